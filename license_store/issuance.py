"""Issuing licenses from records: sign new and changed ones, supersede old versions, cancel.

Issuance works in batches: each credential is built and canonicalized once, the proof
configuration (the same for the whole call) is hashed once, signatures are requested a batch at
a time (a :class:`~license_store.signer.BatchSigner` signs them in parallel while the next batch
is built), and rows are written with one bulk INSERT per table.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog_schemas.errors import FatalError, ValidationFailedError
from license_store import multikey
from license_store.canonical import canonicalize, canonicalize_plain
from license_store.credential import ISSUER_NAME, VC_CONTEXT, build_credential
from license_store.did import controller_of
from license_store.ed25519 import ALGORITHM
from license_store.error import (
    ConcurrentIssuanceError,
    ConcurrentStatusChangeError,
    LicenseIdentifierError,
    UnknownLicenseTypeError,
    UnsupportedAlgorithmError,
)
from license_store.identifier import MAX_SERIAL, MAX_VERSION, IdentifierScope
from license_store.model import (
    CANCELLED,
    EXPIRED,
    REVOKED,
    SUPERSEDED,
    SUSPENDED,
    VALID,
    License,
    LicenseHolder,
)
from license_store.proof import ASSERTION_METHOD, CRYPTOSUITE, PROOF_TYPE
from license_store.record import LicenseRecord
from license_store.signer import Pending, Signer, submit
from license_store.status import PIPELINE, Seen, StatusChange, record_changes, transition
from license_store.status_list import base_url_of, status_entries
from license_store.store import Cipher
from license_store.timestamp import format_timestamp

logger = logging.getLogger(__name__)

# Bound IN lists: SQLite allows 32766 parameters, and smaller chunks keep plans simple.
_CHUNK: Final = 500
# Credentials are a few KiB; the bound keeps every stored token well inside what ciphers accept.
MAX_CREDENTIAL_BYTES: Final = 32 * 1024
# Signatures are requested this many at a time (the batch a worker or HSM signs in one go).
SIGN_BATCH: Final = 256
# At most this many batches are out for signing at once (bounds memory and pipe buffers).
IN_FLIGHT: Final = 4
# A multibase base58btc Ed25519 signature is at most 89 characters with its "z".
_MAX_PROOF_VALUE: Final = 89
# A record whose latest version has one of these and the same row_hash is unchanged: the
# pipeline must not re-issue (and so undo) a suspension, revocation or expiry.
_KEEPS: Final = frozenset({VALID, SUSPENDED, REVOKED, EXPIRED})
# A new version of a suspended or revoked record is issued in that status.
_CARRIED: Final = frozenset({SUSPENDED, REVOKED})
_CANCELLABLE: Final = frozenset({VALID, SUSPENDED})


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
    status_seq: int
    row_hash: str
    license_type: str
    issuer_department: str
    pending: dict[str, Any] | None = None  # the row dict, when issued by this very call


@dataclass
class _Job:
    """A credential waiting for its signature."""

    row: dict[str, Any]
    unsigned: bytes


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
    status_base_url: str | None = None,
) -> IssueResult:
    """Sign and store new or changed records in the caller's transaction; unchanged ones no-op.

    Each license gets the next status-list index; its ``credentialStatus`` points at the
    revocation and suspension lists under ``status_base_url`` (default: the did:web origin).
    """
    if now.utcoffset() is None:
        raise ValidationFailedError("now must be an aware datetime")
    if controller_of(signer.verification_method) != issuer_did:
        raise ValidationFailedError("the signer's key does not belong to issuer_did")
    if signer.algorithm != ALGORITHM:
        raise UnsupportedAlgorithmError(f"{CRYPTOSUITE} signs with Ed25519, not {signer.algorithm}")
    scopes = _check_codes(records, type_codes, issuer_codes)
    base_url = status_base_url or base_url_of(issuer_did)
    key_id = signer.verification_method.partition("#")[2] or signer.verification_method
    proof_head, config_hash = _proof_parts(signer.verification_method, now)
    room = MAX_CREDENTIAL_BYTES - len(proof_head) - _MAX_PROOF_VALUE - len(b',"proof":"}}')
    current = _load_current(session, {record.record_key for record in records})
    next_serial: dict[tuple[str, str], int] = {}
    next_index = _first_free_index(session)
    jobs: list[_Job] = []
    holder_rows: list[dict[str, Any]] = []
    carried: list[StatusChange] = []
    to_supersede: list[Seen] = []
    superseded_by: dict[str, str] = {}
    issued: list[IssuedLicense] = []
    unchanged: list[str] = []
    rejected: list[Rejection] = []
    batch: list[bytes] = []
    pending: list[Pending] = []
    signatures: list[bytes] = []

    for record in records:
        previous = current.get(record.record_key)
        if previous and previous.status in _KEEPS and previous.row_hash == record.row_hash:
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
        license_id = scopes[scope].format(serial, version)
        status_index = next_index
        credential = build_credential(
            record,
            license_id=license_id,
            issuer_did=issuer_did,
            issuer_name=issuer_name,
            credential_status=status_entries(base_url, status_index),
        )
        # Records hold only str/int/bool/None fields unless a float slipped in; those take the
        # full RFC 8785 path.
        plain = not any(type(value) is float for value in record.fields.values())
        unsigned = canonicalize_plain(credential) if plain else canonicalize(credential)
        if len(unsigned) > room:
            rejected.append(
                Rejection(
                    record.record_key,
                    "license_record_too_large",
                    f"the signed credential exceeds {MAX_CREDENTIAL_BYTES} bytes",
                )
            )
            continue
        next_index += 1
        status = VALID
        status_seq = 0
        if previous and previous.status in _CARRIED:
            # A changed record of a suspended or revoked license: keep the decision, take the data.
            status = previous.status
            status_seq = 1
            carried.append(
                StatusChange(
                    license_id,
                    1,
                    None,
                    status,
                    f"new version of {previous.license_id}, which is {previous.status}",
                    PIPELINE,
                    now,
                )
            )
        row = {
            "license_id": license_id,
            "record_key": record.record_key,
            "version": version,
            "serial": serial,
            "license_type": record.license_type,
            "issuer_department": record.issuer_department,
            "status": status,
            "status_seq": status_seq,
            "status_index": status_index,
            "valid_from": record.valid_from,
            "valid_until": record.valid_until,
            "issued_at": now,
            "status_changed_at": now if status != VALID else None,
            "row_hash": record.row_hash,
            "source": record.source,
            "batch_id": record.batch_id,
            "as_of": record.as_of,
            "key_id": key_id,
        }
        jobs.append(_Job(row, unsigned))
        batch.append(config_hash + hashlib.sha256(unsigned).digest())
        if len(batch) == SIGN_BATCH:
            pending.append(submit(signer, batch))
            batch = []
            if len(pending) >= IN_FLIGHT:
                signatures.extend(pending.pop(0)())
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
                previous.pending["status_seq"] = previous.status_seq + 1
                previous.pending["status_changed_at"] = now
                carried.append(
                    StatusChange(
                        previous.license_id,
                        previous.status_seq + 1,
                        VALID,
                        SUPERSEDED,
                        f"superseded by {license_id}",
                        PIPELINE,
                        now,
                    )
                )
            else:
                to_supersede.append(Seen(previous.license_id, VALID, previous.status_seq))
                superseded_by[previous.license_id] = license_id
        current[record.record_key] = _Current(
            license_id, version, serial, status, status_seq, record.row_hash, *scope, row
        )
        issued.append(IssuedLicense(license_id, record.record_key, version, superseded))

    if batch:
        pending.append(submit(signer, batch))
    for wait in pending:
        signatures.extend(wait())
    if len(signatures) != len(jobs):
        raise FatalError("the signer returned a different number of signatures than asked")
    rows = [
        _signed_row(job, signature, proof_head, cipher)
        for job, signature in zip(jobs, signatures, strict=True)
    ]

    try:
        transition(
            session=session,
            seen=to_supersede,
            to=SUPERSEDED,
            reasons={old: f"superseded by {new}" for old, new in superseded_by.items()},
            actor=PIPELINE,
            now=now,
        )
    except ConcurrentStatusChangeError:
        raise ConcurrentIssuanceError(
            "a license changed status while being superseded; roll back and retry"
        ) from None
    try:
        for chunk in _row_chunks(rows):
            session.execute(insert(License.__table__), chunk)  # type: ignore[arg-type]
        for chunk in _row_chunks(holder_rows):
            session.execute(insert(LicenseHolder.__table__), chunk)  # type: ignore[arg-type]
    except IntegrityError:
        raise ConcurrentIssuanceError(
            "another issuer wrote one of these licenses first; roll back and retry"
        ) from None
    try:
        record_changes(session=session, changes=carried)
    except ConcurrentStatusChangeError:
        raise ConcurrentIssuanceError("another issuer wrote these licenses first") from None
    logger.info(
        "issued %d licenses (%d superseded, %d in a carried status), %d unchanged, %d rejected",
        len(issued),
        len(to_supersede),
        len(carried),
        len(unchanged),
        len(rejected),
    )
    return IssueResult(tuple(issued), tuple(unchanged), tuple(rejected))


def cancel(*, session: Session, record_keys: Iterable[str], now: dt.datetime) -> CancelResult:
    """Mark the current license of each record cancelled (the credential is never edited).

    A valid or suspended license is cancelled; a revoked or expired one keeps its status.
    """
    if now.utcoffset() is None:
        raise ValidationFailedError("now must be an aware datetime")
    keys = list(dict.fromkeys(record_keys))
    current = _load_current(session, set(keys))
    targets = [current[k] for k in keys if k in current and current[k].status in _CANCELLABLE]
    try:
        transition(
            session=session,
            seen=[Seen(c.license_id, c.status, c.status_seq) for c in targets],
            to=CANCELLED,
            reasons={c.license_id: "the record was deleted at the source" for c in targets},
            actor=PIPELINE,
            now=now,
        )
    except ConcurrentStatusChangeError:
        raise ConcurrentIssuanceError("a license changed status while being cancelled") from None
    skipped = tuple(k for k in keys if k not in current or current[k].status not in _CANCELLABLE)
    logger.info(
        "cancelled %d licenses; %d records had no license to cancel", len(targets), len(skipped)
    )
    return CancelResult(tuple(c.license_id for c in targets), skipped)


def _proof_parts(verification_method: str, now: dt.datetime) -> tuple[bytes, bytes]:
    """The stored proof up to its value, and the hash of the proof configuration.

    Every credential of one call has the same proof configuration (same key, same ``created``,
    same ``@context``), so eddsa-jcs-2022's first hash is computed once per call.
    """
    config = {
        "@context": [VC_CONTEXT],
        "type": PROOF_TYPE,
        "cryptosuite": CRYPTOSUITE,
        "created": format_timestamp(now),
        "verificationMethod": verification_method,
        "proofPurpose": ASSERTION_METHOD,
    }
    config_hash = hashlib.sha256(canonicalize(config)).digest()
    head = json.dumps(config, ensure_ascii=False, separators=(",", ":"))[:-1]
    return (head + ',"proofValue":"').encode("utf-8"), config_hash


def _signed_row(job: _Job, signature: bytes, proof_head: bytes, cipher: Cipher) -> dict[str, Any]:
    # The stored text is the unsigned canonical JSON with the proof appended as its last member:
    # still one JSON object with the same members, without canonicalizing it a second time.
    proof_value = multikey.encode_base58btc(signature).encode("ascii")
    signed = b"".join((job.unsigned[:-1], b',"proof":', proof_head, proof_value, b'"}}'))
    row = job.row
    # The credential names the holders' ID numbers: it is only ever stored encrypted.
    row["credential_enc"] = cipher.encrypt(signed, aad=row["license_id"])
    return row


def _check_codes(
    records: Sequence[LicenseRecord], type_codes: Mapping[str, str], issuer_codes: Mapping[str, str]
) -> dict[tuple[str, str], IdentifierScope]:
    scopes: dict[tuple[str, str], IdentifierScope] = {}
    for scope in {(r.license_type, r.issuer_department) for r in records}:
        license_type, issuer = scope
        if license_type not in type_codes:
            raise UnknownLicenseTypeError(f"no identifier code for license type {license_type!r}")
        if issuer not in issuer_codes:
            raise UnknownLicenseTypeError(f"no identifier code for issuer {issuer!r}")
        try:
            scopes[scope] = IdentifierScope(type_codes[license_type], issuer_codes[issuer])
        except LicenseIdentifierError as exc:
            raise UnknownLicenseTypeError(
                f"catalog code for {license_type!r}/{issuer!r} is malformed: {exc.message}"
            ) from None
    return scopes


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
                License.status_seq,
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
                    row.status_seq,
                    row.row_hash,
                    row.license_type,
                    row.issuer_department,
                )
    return latest


def _first_free_index(session: Session) -> int:
    # Read once per call, like serials: two concurrent issuers would take the same index and one
    # of them fails on the unique constraint (ConcurrentIssuanceError, retriable).
    highest = session.scalar(select(func.max(License.status_index)))
    return 0 if highest is None else highest + 1


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


def _row_chunks(rows: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    # executemany in slices: bounded memory in the driver, same speed.
    for start in range(0, len(rows), 2000):
        yield rows[start : start + 2000]


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]
