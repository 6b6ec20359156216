"""Issuing licenses from records: sign new and changed ones, supersede old versions, cancel."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog_schemas.errors import FatalError, ValidationFailedError
from license_store.canonical import canonicalize
from license_store.credential import ISSUER_NAME, build_credential
from license_store.did import controller_of
from license_store.error import (
    ConcurrentIssuanceError,
    LicenseIdentifierError,
    UnknownLicenseTypeError,
)
from license_store.identifier import MAX_SERIAL, MAX_VERSION, LicenseIdentifier
from license_store.model import CANCELLED, SUPERSEDED, VALID, License, LicenseHolder
from license_store.proof import create_proof
from license_store.record import LicenseRecord
from license_store.signer import Signer
from license_store.store import Cipher

logger = logging.getLogger(__name__)

# Bound IN lists: SQLite allows 32766 parameters, and smaller chunks keep plans simple.
_CHUNK: Final = 500
# Credentials are a few KiB; the bound keeps every stored token well inside what ciphers accept.
MAX_CREDENTIAL_BYTES: Final = 32 * 1024


@dataclass(frozen=True)
class IssuedLicense:
    """A license version written by :func:`issue`."""

    license_id: str
    record_key: str
    version: int
    superseded: str | None


@dataclass(frozen=True)
class Rejection:
    """A record :func:`issue` could not turn into a license; quarantine it with ``reason``."""

    record_key: str
    reason: str
    message: str


@dataclass(frozen=True)
class IssueResult:
    """What one call of :func:`issue` did, record by record."""

    issued: tuple[IssuedLicense, ...]
    unchanged: tuple[str, ...]
    rejected: tuple[Rejection, ...]

    @property
    def superseded(self) -> tuple[str, ...]:
        """Identifiers of the versions this call superseded."""
        return tuple(item.superseded for item in self.issued if item.superseded is not None)


@dataclass(frozen=True)
class CancelResult:
    """What :func:`cancel` did: cancelled license ids, and record keys with nothing to cancel."""

    cancelled: tuple[str, ...]
    not_cancellable: tuple[str, ...]


@dataclass
class _Current:
    license_id: str
    version: int
    serial: int
    status: str
    row_hash: str
    license_type: str
    issuer_department: str
    pending: dict[str, Any] | None = None  # the row dict, when issued by this very call


def issue(
    *,
    session: Session,
    records: Sequence[LicenseRecord],
    signer: Signer,
    cipher: Cipher,
    issuer_did: str,
    type_codes: Mapping[str, str],
    issuer_codes: Mapping[str, str],
    now: dt.datetime,
    issuer_name: str = ISSUER_NAME,
) -> IssueResult:
    """Sign and store new or changed records in the caller's transaction; unchanged ones no-op."""
    if now.utcoffset() is None:
        raise ValidationFailedError("now must be an aware datetime")
    if controller_of(signer.verification_method) != issuer_did:
        raise ValidationFailedError("the signer's key does not belong to issuer_did")
    _check_codes(records, type_codes, issuer_codes)
    key_id = signer.verification_method.partition("#")[2] or signer.verification_method
    current = _load_current(session, {record.record_key for record in records})
    next_serial: dict[tuple[str, str], int] = {}
    rows: list[dict[str, Any]] = []
    holder_rows: list[dict[str, Any]] = []
    to_supersede: list[str] = []
    issued: list[IssuedLicense] = []
    unchanged: list[str] = []
    rejected: list[Rejection] = []

    for record in records:
        previous = current.get(record.record_key)
        if previous and previous.status == VALID and previous.row_hash == record.row_hash:
            unchanged.append(record.record_key)
            continue
        scope = (record.license_type, record.issuer_department)
        if previous and (previous.license_type, previous.issuer_department) != scope:
            rejected.append(
                Rejection(
                    record.record_key,
                    "license_record_type_changed",
                    "a record cannot change its license type or issuer",
                )
            )
            continue
        version = previous.version + 1 if previous else 1
        if version > MAX_VERSION:
            rejected.append(
                Rejection(
                    record.record_key,
                    "license_version_exhausted",
                    f"a record cannot have more than {MAX_VERSION} versions",
                )
            )
            continue
        serial = previous.serial if previous else _take_serial(session, next_serial, scope)
        license_id = str(
            LicenseIdentifier(
                type_codes[record.license_type],
                issuer_codes[record.issuer_department],
                serial,
                version,
            )
        )
        credential = create_proof(
            build_credential(
                record, license_id=license_id, issuer_did=issuer_did, issuer_name=issuer_name
            ),
            signer=signer,
            created=now,
        )
        signed = canonicalize(credential)
        if len(signed) > MAX_CREDENTIAL_BYTES:
            rejected.append(
                Rejection(
                    record.record_key,
                    "license_record_too_large",
                    f"the signed credential exceeds {MAX_CREDENTIAL_BYTES} bytes",
                )
            )
            continue
        row = {
            "license_id": license_id,
            "record_key": record.record_key,
            "version": version,
            "serial": serial,
            "license_type": record.license_type,
            "issuer_department": record.issuer_department,
            "status": VALID,
            "valid_from": record.valid_from,
            "valid_until": record.valid_until,
            "issued_at": now,
            "status_changed_at": None,
            "row_hash": record.row_hash,
            "source": record.source,
            "batch_id": record.batch_id,
            "as_of": record.as_of,
            "key_id": key_id,
            # The credential names the holders' ID numbers: it is only ever stored encrypted.
            "credential_enc": cipher.encrypt(signed, aad=license_id),
        }
        rows.append(row)
        holder_rows.extend(
            {
                "license_id": license_id,
                "role": h.role,
                "holder_key": h.holder_key,
                "kind": h.kind,
                "id_masked": h.id_masked,
            }
            for h in record.holders
        )
        superseded = None
        if previous and previous.status == VALID:
            superseded = previous.license_id
            if previous.pending is not None:
                # Two changes of one record in one call: the first version never reached the DB.
                previous.pending["status"] = SUPERSEDED
                previous.pending["status_changed_at"] = now
            else:
                to_supersede.append(previous.license_id)
        current[record.record_key] = _Current(
            license_id, version, serial, VALID, record.row_hash, *scope, pending=row
        )
        issued.append(IssuedLicense(license_id, record.record_key, version, superseded))

    _supersede(session, to_supersede, now)
    try:
        if rows:
            session.execute(insert(License), rows)
            session.execute(insert(LicenseHolder), holder_rows)
    except IntegrityError:
        raise ConcurrentIssuanceError(
            "another issuer wrote one of these licenses first; roll back and retry"
        ) from None
    logger.info(
        "issued %d licenses (%d superseded), %d unchanged, %d rejected",
        len(issued),
        len(to_supersede),
        len(unchanged),
        len(rejected),
    )
    return IssueResult(tuple(issued), tuple(unchanged), tuple(rejected))


def cancel(*, session: Session, record_keys: Iterable[str], now: dt.datetime) -> CancelResult:
    """Mark the current license of each record cancelled (the credential is never edited)."""
    if now.utcoffset() is None:
        raise ValidationFailedError("now must be an aware datetime")
    keys = list(dict.fromkeys(record_keys))
    current = _load_current(session, set(keys))
    targets = [current[k].license_id for k in keys if k in current and current[k].status == VALID]
    for chunk in _chunks(targets):
        result = session.execute(
            update(License)
            .where(License.license_id.in_(chunk), License.status == VALID)
            .values(status=CANCELLED, status_changed_at=now)
            .execution_options(synchronize_session="fetch")
        )
        if result.rowcount != len(chunk):  # type: ignore[attr-defined]
            raise ConcurrentIssuanceError("a license changed status while being cancelled")
    skipped = tuple(k for k in keys if k not in current or current[k].status != VALID)
    logger.info(
        "cancelled %d licenses; %d records had no valid license", len(targets), len(skipped)
    )
    return CancelResult(tuple(targets), skipped)


def _check_codes(
    records: Sequence[LicenseRecord], type_codes: Mapping[str, str], issuer_codes: Mapping[str, str]
) -> None:
    for scope in {(r.license_type, r.issuer_department) for r in records}:
        license_type, issuer = scope
        if license_type not in type_codes:
            raise UnknownLicenseTypeError(f"no identifier code for license type {license_type!r}")
        if issuer not in issuer_codes:
            raise UnknownLicenseTypeError(f"no identifier code for issuer {issuer!r}")
        try:
            LicenseIdentifier(type_codes[license_type], issuer_codes[issuer], 0, 1)
        except LicenseIdentifierError as exc:
            raise UnknownLicenseTypeError(
                f"catalog code for {license_type!r}/{issuer!r} is malformed: {exc.message}"
            ) from None


def _load_current(session: Session, record_keys: set[str]) -> dict[str, _Current]:
    latest: dict[str, _Current] = {}
    for chunk in _chunks(sorted(record_keys)):
        rows = session.execute(
            select(
                License.record_key,
                License.license_id,
                License.version,
                License.serial,
                License.status,
                License.row_hash,
                License.license_type,
                License.issuer_department,
            ).where(License.record_key.in_(chunk))
        )
        for row in rows:
            seen = latest.get(row.record_key)
            if seen is None or row.version > seen.version:
                latest[row.record_key] = _Current(
                    row.license_id,
                    row.version,
                    row.serial,
                    row.status,
                    row.row_hash,
                    row.license_type,
                    row.issuer_department,
                )
    return latest


def _take_serial(
    session: Session, next_serial: dict[tuple[str, str], int], scope: tuple[str, str]
) -> int:
    # A counter per (type, issuer): unique by construction, and read once per call. Two
    # concurrent issuers would pick the same number and one fails on the unique constraint.
    if scope not in next_serial:
        highest = session.scalar(
            select(func.max(License.serial)).where(
                License.license_type == scope[0], License.issuer_department == scope[1]
            )
        )
        next_serial[scope] = (highest or 0) + 1
    serial = next_serial[scope]
    if serial > MAX_SERIAL:
        raise FatalError(
            f"serial numbers of {scope} are exhausted", code="license_serial_exhausted"
        )
    next_serial[scope] = serial + 1
    return serial


def _supersede(session: Session, license_ids: list[str], now: dt.datetime) -> None:
    for chunk in _chunks(license_ids):
        # Compare-and-swap: only a version still valid may become superseded.
        result = session.execute(
            update(License)
            .where(License.license_id.in_(chunk), License.status == VALID)
            .values(status=SUPERSEDED, status_changed_at=now)
            .execution_options(synchronize_session="fetch")
        )
        if result.rowcount != len(chunk):  # type: ignore[attr-defined]
            raise ConcurrentIssuanceError("a license changed status while being superseded")


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]
