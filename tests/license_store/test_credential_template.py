"""The batch credential template writes exactly RFC 8785 of what build_credential builds."""

from __future__ import annotations

import datetime as dt

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from license_store.credential import CredentialTemplate, build_credential
from license_store.record import RESERVED_FIELDS, HolderRef, LicenseRecord
from license_store.status_list import LIST_SIZE, base_url_of, status_entries

# Text of every kind a department can send: controls, quotes, backslashes, non-ASCII, astral.
_text = st.text(
    st.sampled_from(["\x00", "\x1f", "\t", "\n", '"', "\\", "%", "d", "é", "中", "\U0001f602"])
    | st.characters(exclude_categories=("Cs",)),
    min_size=1,
    max_size=12,
).filter(str.strip)
_names = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,10}", fullmatch=True).filter(
    lambda name: name not in RESERVED_FIELDS
)
_values = st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | _text
_days = st.none() | st.dates(dt.date(1950, 1, 1), dt.date(2080, 12, 31))
_codes = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True)


@st.composite
def _records(draw: st.DrawFn) -> LicenseRecord:
    valid_from, valid_until = draw(_days), draw(_days)
    if valid_from and valid_until and valid_from > valid_until:
        valid_from, valid_until = valid_until, valid_from
    holders = tuple(
        HolderRef(
            f"role_{n}",
            draw(st.sampled_from(["natural_person", "legal_person"])),
            f"{n:064x}",
            draw(st.from_regex(r"[0-9A-Z]{6,20}", fullmatch=True)),
            draw(st.none() | _text),
        )
        for n in range(draw(st.integers(1, 3)))
    )
    return LicenseRecord(
        record_key=draw(_text),
        license_type=draw(_codes),
        type_name_zh=draw(_text),
        type_name_en=draw(_text),
        issuer_department=draw(_codes),
        issuer_name_zh=draw(_text),
        issuer_name_en=draw(_text),
        license_no=draw(_text),
        holders=holders,
        fields=draw(st.dictionaries(_names, _values, max_size=8)),
        valid_from=valid_from,
        valid_until=valid_until,
        source="s",
        batch_id="b",
        as_of=dt.datetime(2026, 11, 27, tzinfo=dt.UTC),
        row_hash="h",
    )


@settings(max_examples=300, deadline=None)
@given(
    records=st.lists(_records(), min_size=1, max_size=4),
    indexes=st.lists(st.integers(0, 3 * LIST_SIZE), min_size=4, max_size=4),
    issuer_name=_text,
    host=st.sampled_from(["onehub.gd.gov.cn", "hub.example%3A8443:path%25x"]),
)
def test_template_equals_rfc8785_of_build_credential(
    records: list[LicenseRecord], indexes: list[int], issuer_name: str, host: str
) -> None:
    issuer_did = f"did:web:{host}"
    base_url = base_url_of(issuer_did)
    # One template for the whole batch, as issue() uses it: its caches must not leak between
    # records of different kinds.
    template = CredentialTemplate(
        issuer_did=issuer_did, issuer_name=issuer_name, status_base_url=base_url
    )
    for record, index in zip(records, indexes, strict=False):
        license_id = f"1.2.156.3005.2.X.Y.{index:010d}.001.K"
        expected = rfc8785.dumps(
            build_credential(
                record,
                license_id=license_id,
                issuer_did=issuer_did,
                issuer_name=issuer_name,
                credential_status=status_entries(base_url, index),
            )
        )
        assert template.render(record, license_id=license_id, status_index=index) == expected


def test_a_float_field_is_left_to_the_full_path() -> None:
    record = _plain_record(fields={"area": 12.5})
    template = CredentialTemplate(issuer_did="did:web:a.cn", issuer_name="n", status_base_url=None)
    assert template.render(record, license_id="x", status_index=None) is None


def test_without_status_entries_the_template_still_matches() -> None:
    record = _plain_record(fields={"n": 3, "s": "\u2028"})
    template = CredentialTemplate(issuer_did="did:web:a.cn", issuer_name="n", status_base_url=None)
    expected = rfc8785.dumps(
        build_credential(record, license_id="x", issuer_did="did:web:a.cn", issuer_name="n")
    )
    assert template.render(record, license_id="x", status_index=None) == expected


def _plain_record(fields: dict[str, object]) -> LicenseRecord:
    return LicenseRecord(
        record_key="k",
        license_type="t",
        type_name_zh="证",
        type_name_en="T",
        issuer_department="d",
        issuer_name_zh="厅",
        issuer_name_en="D",
        license_no="1",
        holders=(HolderRef("owner", "natural_person", "0" * 64, "ABC123"),),
        fields=fields,  # type: ignore[arg-type]
        valid_from=None,
        valid_until=None,
        source="s",
        batch_id="b",
        as_of=dt.datetime(2026, 11, 27, tzinfo=dt.UTC),
        row_hash="h",
    )


@pytest.mark.parametrize("index", [0, 1, LIST_SIZE - 1, LIST_SIZE, 10 * LIST_SIZE + 7])
def test_status_entries_at_list_edges(index: int) -> None:
    record = _plain_record(fields={})
    base_url = "https://onehub.gd.gov.cn"
    template = CredentialTemplate(
        issuer_did="did:web:a.cn", issuer_name="n", status_base_url=base_url
    )
    expected = rfc8785.dumps(
        build_credential(
            record,
            license_id="x",
            issuer_did="did:web:a.cn",
            issuer_name="n",
            credential_status=status_entries(base_url, index),
        )
    )
    assert template.render(record, license_id="x", status_index=index) == expected


def test_a_str_subclass_value_is_left_to_the_full_path() -> None:
    # The template writes its constant members as ready-made JSON, which only msgspec takes; a
    # value msgspec refuses must send the record to the general path, never to a wrong text.
    class Code(str):
        pass

    record = _plain_record(fields={"code": Code("A-1"), "n": 3})
    template = CredentialTemplate(issuer_did="did:web:a.cn", issuer_name="n", status_base_url=None)
    assert template.render(record, license_id="x", status_index=None) is None
    plain = _plain_record(fields={"code": "A-1", "n": 3})
    assert template.render(plain, license_id="x", status_index=None) == rfc8785.dumps(
        build_credential(plain, license_id="x", issuer_did="did:web:a.cn", issuer_name="n")
    )
