"""LicenseRecord and HolderRef refuse bad rows with a reason, and keep ID numbers out of reprs."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from catalog_schemas.errors import RowRejectedError
from license_store.credential import build_credential, pascal_case
from license_store.record import HolderRef


def test_repr_never_shows_the_id_number_or_name(make_record: Any) -> None:
    record = make_record(1)
    for holder in record.holders:
        assert holder.id_number not in repr(record) and holder.name not in repr(record)
        assert holder.id_masked == holder.id_number[:6] + "********" + holder.id_number[-4:]


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"holders": ()}, "license_record_holders"),
        ({"license_type": "Marriage"}, "license_record_license_type"),
        ({"record_key": " "}, "license_record_record_key"),
        ({"fields": {"licenseNumber": "x"}}, "license_record_field_name"),
        ({"fields": {"bad name": "x"}}, "license_record_field_name"),
        ({"fields": {"n": float("nan")}}, "license_record_field_value"),
        ({"fields": {"n": 2**60}}, "license_record_field_value"),
        ({"fields": {"n": [1, 2]}}, "license_record_field_value"),
        ({"fields": {"n": "\ud800"}}, "license_record_field_value"),
        (
            {"valid_from": dt.date(2020, 1, 2), "valid_until": dt.date(2020, 1, 1)},
            "license_record_validity",
        ),
        ({"valid_from": dt.datetime(2020, 1, 1)}, "license_record_valid_from"),
        ({"as_of": dt.datetime(2020, 1, 1)}, "license_record_as_of"),
    ],
)
def test_bad_records_are_rejected_with_a_reason(
    make_record: Any, overrides: dict[str, Any], reason: str
) -> None:
    with pytest.raises(RowRejectedError) as caught:
        make_record(1, **overrides)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"kind": "robot"}, "license_record_holder_kind"),
        ({"holder_key": "ABC"}, "license_record_holder_key"),
        ({"id_number": "4401 06"}, "license_record_holder_id"),
        ({"role": "Party A"}, "license_record_holder_role"),
    ],
)
def test_bad_holders_are_rejected(make_record: Any, change: dict[str, Any], reason: str) -> None:
    holder = make_record(1).holders[0]
    with pytest.raises(RowRejectedError) as caught:
        dataclasses.replace(holder, **change)
    assert caught.value.reason == reason


def test_duplicate_holder_is_rejected(make_record: Any) -> None:
    holder: HolderRef = make_record(1).holders[0]
    with pytest.raises(RowRejectedError):
        make_record(1, holders=(holder, holder))


def test_credential_shape(make_record: Any) -> None:
    record = make_record(1, fields={"certificate_no": "J1", "note": None, "copies": 2})
    credential = build_credential(record, license_id="L", issuer_did="did:web:hub.example")
    assert credential["type"] == ["VerifiableCredential", "ELicense", "MarriageCertificate"]
    assert credential["name"] == "结婚证"
    assert credential["issuer"] == {
        "id": "did:web:hub.example",
        "name": "广东省政务数据共享交换平台 OneHub",
    }
    subject = credential["credentialSubject"]
    assert subject["issuingAuthority"] == {
        "code": "dca",
        "name": "广东省民政厅",
        "nameEn": "Department of Civil Affairs of Guangdong Province",
    }
    assert [h["role"] for h in subject["holders"]] == ["party_a", "party_b"]
    assert subject["copies"] == 2 and "note" not in subject
    assert pascal_case("real_estate_title") == "RealEstateTitle"
    with pytest.raises(TypeError):  # fields are a read-only view
        record.fields["x"] = 1  # type: ignore[index, unused-ignore]
