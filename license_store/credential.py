"""The shape of an e-license as a W3C Verifiable Credential 2.0 (unsigned; proof.py signs it)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Final

import msgspec

from license_store.bitstring import MIN_ENTRIES
from license_store.canonical import canonicalize, canonicalize_plain, encode_plain
from license_store.error import StatusListError
from license_store.record import LicenseRecord

VC_CONTEXT: Final = "https://www.w3.org/ns/credentials/v2"
ISSUER_NAME: Final = "广东省政务数据共享交换平台 OneHub"
CREDENTIAL_TYPES: Final = ("VerifiableCredential", "ELicense")
ID_PREFIX: Final = "urn:oid:"
# Licence dates are calendar days in China (UTC+8 all year since 1991): a licence valid from
# D starts at D 00:00 Beijing time and one valid until D ends at D 23:59:59 Beijing time.
_CHINA_OFFSET: Final = dt.timedelta(hours=8)
CHINA_TIME: Final = dt.timezone(_CHINA_OFFSET, "CST")
_MIDNIGHT: Final = dt.time(0, 0)
_LAST_SECOND: Final = dt.time(23, 59, 59)


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
    return dt.datetime.combine(day, _MIDNIGHT, CHINA_TIME).astimezone(dt.UTC)


def end_of_day(day: dt.date) -> dt.datetime:
    """Return the last whole second of a calendar day in China, in UTC."""
    return dt.datetime.combine(day, _LAST_SECOND, CHINA_TIME).astimezone(dt.UTC)


def valid_from_text(day: dt.date) -> str:
    """Return the ``validFrom`` timestamp of a first calendar day.

    The text ``format_timestamp(start_of_day(day))`` writes, by naive arithmetic (China time has
    a fixed offset): a call's records may start on thousands of different days.
    """
    return (dt.datetime.combine(day, _MIDNIGHT) - _CHINA_OFFSET).isoformat() + "Z"


def valid_until_text(day: dt.date) -> str:
    """Return the ``validUntil`` timestamp of a last calendar day (as ``valid_from_text``)."""
    return (dt.datetime.combine(day, _LAST_SECOND) - _CHINA_OFFSET).isoformat() + "Z"


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


class CredentialTemplate:
    """Writes the RFC 8785 bytes of :func:`build_credential` for a batch without building it.

    The members around the subject (context, status entries, id, issuer, name, type, validity)
    are fixed text per license type, status list and day, so they are encoded once and joined;
    only the subject is encoded per license. Records with a float field (JCS number rules),
    or a value of a str or int subclass, are left to the caller: :meth:`render` returns None.
    The bytes equal ``canonicalize(build_credential(...))`` (tests/license_store/test_fast_path.py).
    """

    def __init__(self, *, issuer_did: str, issuer_name: str, status_base_url: str | None) -> None:
        self._issuer = {"id": issuer_did, "name": issuer_name}
        self._base_url = status_base_url
        self._kinds: dict[tuple[str, ...], tuple[dict[str, Any], bytes]] = {}
        self._lists: dict[int, tuple[bytes, ...]] = {}
        self._days: dict[tuple[str, dt.date], bytes] = {}

    def render(
        self, record: LicenseRecord, *, license_id: str, status_index: int | None
    ) -> bytes | None:
        """Return the canonical unsigned credential, or None for a float field (or a subclass)."""
        fields = record.fields
        # LicenseRecord keeps its fields in a read-only proxy, whose copy() is the dict's own
        # (dict() of a proxy goes key by key).
        subject: dict[str, Any] = (
            fields.copy() if isinstance(fields, MappingProxyType) else dict(fields)
        )
        if None in subject.values():
            subject = {name: value for name, value in subject.items() if value is not None}
        if float in map(type, subject.values()):
            return None
        key = (
            record.license_type,
            record.type_name_zh,
            record.type_name_en,
            record.issuer_department,
            record.issuer_name_zh,
            record.issuer_name_en,
        )
        kind = self._kinds.get(key)
        if kind is None:
            kind = self._kinds[key] = self._kind(record)
        constant, tail = kind
        subject.update(constant)
        subject["licenseNumber"] = record.license_no
        subject["holders"] = [
            {"role": holder.role, "kind": holder.kind, "idNumber": holder.id_number}
            if holder.name is None
            else {
                "role": holder.role,
                "kind": holder.kind,
                "idNumber": holder.id_number,
                "name": holder.name,
            }
            for holder in record.holders
        ]
        encoded = encode_plain(subject)
        if encoded is None:
            return None  # a str or int subclass: the caller takes the full path
        parts = [_HEAD]
        if status_index is not None and self._base_url is not None:
            parts.append(self._status(status_index))
        parts += (
            b',"credentialSubject":',
            encoded,
            b',"id":',
            canonicalize_plain(ID_PREFIX + license_id),
            tail,
        )
        if record.valid_from is not None:
            parts.append(self._day("validFrom", record.valid_from))
        if record.valid_until is not None:
            parts.append(self._day("validUntil", record.valid_until))
        parts.append(b"}")
        return b"".join(parts)

    def _kind(self, record: LicenseRecord) -> tuple[dict[str, Any], bytes]:
        # The subject members a license type fixes, already in their canonical form (written
        # as they are by the encoder): only the record's own values are encoded per license.
        constant = {
            name: msgspec.Raw(canonicalize(value))
            for name, value in (
                ("licenseType", record.license_type),
                ("licenseTypeName", record.type_name_zh),
                ("licenseTypeNameEn", record.type_name_en),
                (
                    "issuingAuthority",
                    {
                        "code": record.issuer_department,
                        "name": record.issuer_name_zh,
                        "nameEn": record.issuer_name_en,
                    },
                ),
            )
        }
        tail = b"".join(
            (
                b',"issuer":',
                canonicalize(self._issuer),
                b',"name":',
                canonicalize(record.type_name_zh),
                b',"type":',
                canonicalize(_types(record.license_type)),
            )
        )
        return constant, tail

    def _status(self, status_index: int) -> bytes:
        list_id, bit = divmod(status_index, MIN_ENTRIES)
        pieces = self._lists.get(list_id)
        if pieces is None:
            # Imported here: status_list imports this module.
            from license_store.status_list import LIST_SIZE, status_entries

            # The entries of bit 0, cut where the bit is written (twice in each entry: in
            # "id" and in "statusListIndex").
            assert self._base_url is not None
            marker = "\x00bit\x00"
            entries = status_entries(self._base_url, list_id * LIST_SIZE)
            for entry in entries:
                entry["id"] = entry["id"].rpartition("#")[0] + "#" + marker
                entry["statusListIndex"] = marker
            text = b',"credentialStatus":' + canonicalize(entries)
            pieces = tuple(text.split(canonicalize(marker)[1:-1]))
            first = canonicalize(status_entries(self._base_url, list_id * LIST_SIZE))
            if len(pieces) != _BIT_PLACES + 1 or b"0".join(pieces) != (
                b',"credentialStatus":' + first
            ):
                raise StatusListError(f"no status entry template for {self._base_url!r}")
            self._lists[list_id] = pieces
        return str(bit).encode("ascii").join(pieces)

    def _day(self, name: str, day: dt.date) -> bytes:
        found = self._days.get((name, day))
        if found is None:
            text = valid_from_text(day) if name == "validFrom" else valid_until_text(day)
            found = self._days[(name, day)] = b',"' + name.encode() + b'":' + canonicalize(text)
        return found


_HEAD: Final = b'{"@context":' + canonicalize([VC_CONTEXT])
_BIT_PLACES: Final = 4
