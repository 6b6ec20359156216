"""License identifiers: format, MOD 37,36 check character, and clear errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.iso7064 import mod_37_36

from license_store.error import LicenseIdentifierError
from license_store.identifier import (
    IdentifierScope,
    LicenseIdentifier,
    format_identifier,
    parse_identifier,
)

TYPE = "11440000000000050C001"
ISSUER = "11440000000000050C"


def test_format_and_parse_roundtrip() -> None:
    text = format_identifier(type_code=TYPE, issuer_code=ISSUER, serial=123, version=2)
    prefix, check = text.rsplit(".", 1)
    assert prefix == f"1.2.156.3005.2.{TYPE}.{ISSUER}.0000000123.002"
    # The check character is computed over the concatenated parts, without the dots.
    assert mod_37_36.is_valid(f"{TYPE}{ISSUER}0000000123002{check}")
    assert parse_identifier(text) == LicenseIdentifier(TYPE, ISSUER, 123, 2)


@given(serial=st.integers(0, 10**10 - 1), version=st.integers(1, 999))
def test_every_identifier_parses_back(serial: int, version: int) -> None:
    text = format_identifier(type_code=TYPE, issuer_code=ISSUER, serial=serial, version=version)
    assert parse_identifier(text) == LicenseIdentifier(TYPE, ISSUER, serial, version)


@given(serial=st.integers(0, 10**10 - 1), position=st.integers(0, 9), digit=st.integers(1, 9))
def test_a_changed_serial_digit_breaks_the_check(serial: int, position: int, digit: int) -> None:
    text = format_identifier(type_code=TYPE, issuer_code=ISSUER, serial=serial, version=1)
    start = text.index(f".{serial:010d}.") + 1 + position
    altered = text[:start] + str((int(text[start]) + digit) % 10) + text[start + 1 :]
    with pytest.raises(LicenseIdentifierError) as caught:
        parse_identifier(altered)
    assert caught.value.reason == "license_id_check"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "license_id_format"),
        ("1.2.156.3005.2", "license_id_format"),
        (f"1.2.156.3005.3.{TYPE}.{ISSUER}.0000000001.001.0", "license_id_format"),
        (f"1.2.156.3005.2.{TYPE}.{ISSUER}.1.001.0", "license_id_format"),
        (f"1.2.156.3005.2.{TYPE}.{ISSUER}.0000000001.1.0", "license_id_format"),
        (f"1.2.156.3005.2.{TYPE.lower()}.{ISSUER}.0000000001.001.0", "license_id_format"),
        (f"1.2.156.3005.2.{ISSUER}.{ISSUER}.0000000001.001.0", "license_id_type_code"),
        (f"1.2.156.3005.2.{TYPE}.{TYPE}.0000000001.001.0", "license_id_issuer_code"),
        (f"1.2.156.3005.2.{TYPE}.{ISSUER}.0000000001.000.0", "license_id_version"),
        ("x" * 500, "license_id_format"),
    ],
)
def test_malformed_identifiers_say_what_is_wrong(text: str, reason: str) -> None:
    with pytest.raises(LicenseIdentifierError) as caught:
        parse_identifier(text)
    assert caught.value.reason == reason
    assert caught.value.http_status == 422


def test_out_of_range_parts_are_refused() -> None:
    with pytest.raises(LicenseIdentifierError):
        format_identifier(type_code=TYPE, issuer_code=ISSUER, serial=10**10, version=1)
    with pytest.raises(LicenseIdentifierError):
        format_identifier(type_code=TYPE, issuer_code=ISSUER, serial=1, version=1000)
    with pytest.raises(LicenseIdentifierError):
        format_identifier(
            type_code="11440000000000050I001", issuer_code=ISSUER, serial=1, version=1
        )


def test_every_catalog_license_type_has_well_formed_codes() -> None:
    # The pipeline passes type code = issuing department's credit code + the type's 3-digit
    # sequence, and issuer code = the department's credit code (exchange.pipeline).
    from catalog_schemas.catalog import shipped_catalog

    catalog = shipped_catalog()
    assert catalog.license_types
    seen = set()
    for license_type in catalog.license_types.values():
        department = catalog.department(license_type.issuer)
        type_code = department.credit_code + license_type.type_seq
        scope = IdentifierScope(type_code, department.credit_code)
        parsed = parse_identifier(scope.format(42, 3))
        assert (parsed.type_code, parsed.issuer_code) == (type_code, department.credit_code)
        seen.add(type_code)
    assert len(seen) == len(catalog.license_types)  # no two types share a code
