"""The shape of an e-license as a W3C Verifiable Credential 2.0 (unsigned; proof.py signs it)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Final

from license_store.record import LicenseRecord
from license_store.timestamp import format_timestamp

VC_CONTEXT: Final = "https://www.w3.org/ns/credentials/v2"
ISSUER_NAME: Final = "广东省政务数据共享交换平台 OneHub"
CREDENTIAL_TYPES: Final = ("VerifiableCredential", "ELicense")
ID_PREFIX: Final = "urn:oid:"
# Licence dates are calendar days in China (UTC+8 all year since 1991): a licence valid from
# D starts at D 00:00 Beijing time and one valid until D ends at D 23:59:59 Beijing time.
CHINA_TIME: Final = dt.timezone(dt.timedelta(hours=8), "CST")


def pascal_case(code: str) -> str:
    """Return the PascalCase credential type of a catalog code (``marriage_certificate``)."""
    return "".join(part[:1].upper() + part[1:] for part in code.split("_") if part)


def credential_id(license_id: str) -> str:
    """Return the credential ``id`` URI of a license identifier."""
    return ID_PREFIX + license_id


def license_id_of(credential_uri: object) -> str | None:
    """Return the license identifier inside a credential ``id``, or None if it is not ours."""
    if isinstance(credential_uri, str) and credential_uri.startswith(ID_PREFIX):
        return credential_uri[len(ID_PREFIX) :]
    return None


def start_of_day(day: dt.date) -> dt.datetime:
    """Return the first instant of a calendar day in China, in UTC."""
    return dt.datetime.combine(day, dt.time(0, 0), CHINA_TIME).astimezone(dt.UTC)


def end_of_day(day: dt.date) -> dt.datetime:
    """Return the last whole second of a calendar day in China, in UTC."""
    return dt.datetime.combine(day, dt.time(23, 59, 59), CHINA_TIME).astimezone(dt.UTC)


@lru_cache(maxsize=4096)
def valid_from_text(day: dt.date) -> str:
    """Return the ``validFrom`` timestamp of a first calendar day (cached: batches repeat days)."""
    return format_timestamp(start_of_day(day))


@lru_cache(maxsize=4096)
def valid_until_text(day: dt.date) -> str:
    """Return the ``validUntil`` timestamp of a last calendar day."""
    return format_timestamp(end_of_day(day))


def build_credential(
    record: LicenseRecord,
    *,
    license_id: str,
    issuer_did: str,
    issuer_name: str = ISSUER_NAME,
    credential_status: Sequence[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Return the unsigned credential of one license version (with its status-list entries)."""
    holders = []
    for holder in record.holders:
        entry = {"role": holder.role, "kind": holder.kind, "idNumber": holder.id_number}
        if holder.name is not None:
            entry["name"] = holder.name
        holders.append(entry)
    # An absent value is left out rather than written as null (JSON-LD drops nulls anyway).
    subject: dict[str, Any] = {
        name: value for name, value in record.fields.items() if value is not None
    }
    # The record refuses field names that would overwrite these (RESERVED_FIELDS).
    subject["licenseType"] = record.license_type
    subject["licenseTypeName"] = record.type_name_zh
    subject["licenseTypeNameEn"] = record.type_name_en
    subject["licenseNumber"] = record.license_no
    subject["issuingAuthority"] = {
        "code": record.issuer_department,
        "name": record.issuer_name_zh,
        "nameEn": record.issuer_name_en,
    }
    subject["holders"] = holders
    credential: dict[str, Any] = {
        "@context": [VC_CONTEXT],
        "id": ID_PREFIX + license_id,
        "type": _types(record.license_type),
        "issuer": {"id": issuer_did, "name": issuer_name},
        "name": record.type_name_zh,
    }
    if record.valid_from is not None:
        credential["validFrom"] = valid_from_text(record.valid_from)
    if record.valid_until is not None:
        credential["validUntil"] = valid_until_text(record.valid_until)
    credential["credentialSubject"] = subject
    if credential_status:
        credential["credentialStatus"] = list(credential_status)
    return credential


def _types(license_type: str) -> list[str]:
    return [*CREDENTIAL_TYPES, _pascal(license_type)]


@lru_cache(maxsize=256)
def _pascal(code: str) -> str:
    return pascal_case(code)
