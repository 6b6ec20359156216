"""Issuing licenses from records: sign new and changed ones, supersede old versions, cancel.

Issuance works in batches: each credential's RFC 8785 bytes come from a per-call
:class:`~license_store.credential.CredentialTemplate` (only the subject is encoded per license),
the proof configuration (the same for the whole call) is hashed once, signatures are requested a
batch at a time (a :class:`~license_store.signer.BatchSigner` signs them in parallel while the
next batch is built) and their proof values encoded a batch at a time, and each signed batch is
written at once from a background thread: COPY on PostgreSQL (the server inserts while the next
batch is signed), multi-row INSERTs on SQLite (SQLite's B-tree work runs on another core); a Core
bulk INSERT elsewhere. Status-list indexes come from a sequence on PostgreSQL, so issuers of
different license types can run at once.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import logging
import sqlite3
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from hashlib import sha256
from itertools import chain
from typing import Any, Final

import msgspec
from sqlalchemy import Dialect, func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog_schemas.errors import FatalError, ValidationFailedError
from catalog_schemas.holder import mask_id
from license_store.canonical import canonicalize
from license_store.credential import (
    ISSUER_NAME,
    VC_CONTEXT,
    CredentialTemplate,
    build_credential,
)
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
    STATUS_INDEX_SEQUENCE,
    SUPERSEDED,
    SUSPENDED,
    VALID,
    License,
    LicenseHolder,
)
from license_store.proof import ASSERTION_METHOD, CRYPTOSUITE, PROOF_TYPE, encode_signatures
from license_store.record import LicenseRecord
from license_store.signer import BatchSigner, Pending, Signer, submit
from license_store.status import PIPELINE, Seen, StatusChange, record_changes, transition
from license_store.status_list import base_url_of, status_entries
from license_store.store import BatchCipher, Cipher
from license_store.timestamp import format_timestamp

logger = logging.getLogger(__name__)

# Bound IN lists: SQLite allows 32766 parameters, and smaller chunks keep plans simple.
_CHUNK: Final = 500
# Credentials are a few KiB; the bound keeps every stored token well inside what ciphers accept.
MAX_CREDENTIAL_BYTES: Final = 32 * 1024
# Signatures are requested this many at a time (the batch a worker or HSM signs in one go), and
# each signed batch is written at once. Short enough that the database starts storing a call's
# rows early and is left little to store after the last signature: with 1,024 a 2,000-record
# call on PostgreSQL waited 25-36 µs per license for its last COPY, with 256 8-10 µs, for the
# same CPU (bench/issuance.py).
SIGN_BATCH: Final = 256
# Signed credentials are sealed and written this many at a time (a few hundred kB of tokens).
_SEAL_SLICE: Final = 128
# At most this many batches are out for signing at once (bounds memory and pipe buffers).
IN_FLIGHT: Final = 4
# Rows per SQLite INSERT statement. sqlite3 lets the GIL go while SQLite steps a statement and
# takes it back after: row by row (executemany) that was three hand-overs per license between
# the writer thread and the signing one, each waking the other core. With 64 rows a statement
# the issuing thread's CPU per license fell by a tenth and a 20,000-license call took about a
# seventh less wall time (bench/issuance.py).
_SQLITE_ROWS: Final = 64
# A multibase base58btc Ed25519 signature is at most 89 characters with its "z".
_MAX_PROOF_VALUE: Final = 89
# A record whose latest version has one of these and the same row_hash is unchanged: the
# pipeline must not re-issue (and so undo) a suspension, revocation or expiry.
_KEEPS: Final = frozenset({VALID, SUSPENDED, REVOKED, EXPIRED})
# A new version of a suspended or revoked record is issued in that status.
_CARRIED: Final = frozenset({SUSPENDED, REVOKED})
_CANCELLABLE: Final = frozenset({VALID, SUSPENDED})


# Column order of the rows issue() builds (lists, so a version superseded within the same call
# can still be edited before it is written).
_LICENSE_COLUMNS: Final = (
    "license_id",
    "record_key",
    "version",
    "serial",
    "license_type",
    "issuer_department",
    "status",
    "status_seq",
    "status_index",
    "valid_from",
    "valid_until",
    "issued_at",
    "status_changed_at",
    "row_hash",
    "source",
    "batch_id",
    "as_of",
    "key_id",
    "credential_enc",
)
_HOLDER_COLUMNS: Final = ("license_id", "role", "holder_key", "kind", "id_masked")
_STATUS: Final = _LICENSE_COLUMNS.index("status")
_STATUS_SEQ: Final = _LICENSE_COLUMNS.index("status_seq")
_CHANGED_AT: Final = _LICENSE_COLUMNS.index("status_changed_at")
_CREDENTIAL: Final = _LICENSE_COLUMNS.index("credential_enc")


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
    pending: list[Any] | None = None  # the row, when issued by this very call


@dataclass(slots=True)
class _Batch:
    """License rows and their holder rows, waiting for the signatures of ``unsigned``."""

    rows: list[list[Any]]
    holders: list[tuple[str, str, str, str, str]]
    unsigned: list[bytes]
    # len(holders) after each row's holders: where a slice of rows finds its holder rows.
    ends: list[int]

    def part(self, start: int, stop: int) -> _Batch:
        """Rows ``start:stop`` with their holder rows."""
        first = self.ends[start - 1] if start else 0
        return _Batch(
            self.rows[start:stop],
            self.holders[first : self.ends[stop - 1]],
            self.unsigned[start:stop],
            [],
        )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a call, then put back what the caller had.

    issue() allocates a few container objects per license (rows, holder rows, results) that
    live until it returns and form no cycles, so collections during the call find nothing to
    free, yet each one walks the objects of the young generations, and a full one every object
    of the process: in the bench, with the records and 190,000 other objects alive, 2-8 µs per
    license (one full collection per 20,000-license call). In an Airflow worker, with far more
    objects alive, a full collection costs more. Reference counting still frees everything
    that is not in a cycle; a collection at the next allocation after the call catches up.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@_collector_paused()
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

    Each license gets its own status-list index; its ``credentialStatus`` points at the
    revocation and suspension lists under ``status_base_url`` (default: the did:web origin).
    Python's cyclic garbage collector is paused for the call (see :func:`_collector_paused`).
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
    distinct = {record.record_key for record in records}
    current = _load_current(session, distinct)
    # An upper bound on the indexes this call takes: every record changed since the store, and
    # every repeat of a record within the call.
    wanted = 2 * len(records) - len(distinct)
    if current:
        wanted -= sum(
            1
            for record in records
            if _is_unchanged(current.get(record.record_key), record.row_hash)
        )
    indexes = iter(_reserve_indexes(session, wanted))
    writer = _RowWriter(session)
    template = CredentialTemplate(
        issuer_did=issuer_did, issuer_name=issuer_name, status_base_url=base_url
    )
    # A record twice in one call may supersede a version this call made: those rows must stay
    # editable until the end, so such a call writes everything at once.
    streaming = len(distinct) == len(records)
    next_serial: dict[tuple[str, str], int] = {}
    db_now = writer.timestamp(now)
    part = _Batch([], [], [], [])
    carried: list[StatusChange] = []
    to_supersede: list[Seen] = []
    superseded_by: dict[str, str] = {}
    issued: list[IssuedLicense] = []
    unchanged: list[str] = []
    rejected: list[Rejection] = []
    batch: list[bytes] = []
    pending: list[tuple[Pending, _Batch]] = []
    signed = _Batch([], [], [], [])
    # A background signer keeps a few batches out; one that signs on the spot is read at once,
    # so the writer gets each batch as early as possible.
    in_flight = IN_FLIGHT if isinstance(signer, BatchSigner) else 1

    def collect(wait: Pending, waiting: _Batch) -> None:
        signatures = wait()
        if len(signatures) != len(waiting.rows):
            raise FatalError("the signer returned a different number of signatures than asked")
        proof_values = encode_signatures(signatures)
        # Sealed and turned into rows a slice at a time, so a slice's tokens are still in the
        # CPU's cache when its COPY data is made.
        for start in range(0, len(waiting.rows), _SEAL_SLICE):
            stop = min(start + _SEAL_SLICE, len(waiting.rows))
            chunk = waiting.part(start, stop)
            tokens = writer.credentials(_seal(chunk, proof_values[start:stop], proof_head, cipher))
            for row, token in zip(chunk.rows, tokens, strict=True):
                row[_CREDENTIAL] = token
            if streaming:
                writer.write(chunk)
        if streaming:
            writer.flush()
        else:
            signed.rows.extend(waiting.rows)
            signed.holders.extend(waiting.holders)

    try:
        for record in records:
            previous = current.get(record.record_key)
            if _is_unchanged(previous, record.row_hash):
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
            if previous:
                serial = previous.serial
            elif (serial := next_serial.get(scope, 0)) and serial <= MAX_SERIAL:
                next_serial[scope] = serial + 1  # the common case, without a call
            else:
                writer.finish()  # the query below shares the connection with the writer
                serial = _take_serial(session, next_serial, scope)
            license_id = scopes[scope].format(serial, version)
            status_index = next(indexes)
            unsigned = template.render(record, license_id=license_id, status_index=status_index)
            if unsigned is None:
                # A float field (or a str or int subclass): the full RFC 8785 path.
                unsigned = canonicalize(
                    build_credential(
                        record,
                        license_id=license_id,
                        issuer_did=issuer_did,
                        issuer_name=issuer_name,
                        credential_status=status_entries(base_url, status_index),
                    )
                )
            if len(unsigned) > room:
                # Its index stays unused: a gap in the status lists is harmless.
                rejected.append(
                    Rejection(
                        record.record_key,
                        "license_record_too_large",
                        f"the signed credential exceeds {MAX_CREDENTIAL_BYTES} bytes",
                    )
                )
                continue
            status = VALID
            status_seq = 0
            if previous and previous.status in _CARRIED:
                # A changed record of a suspended or revoked license: keep the decision, take
                # the data.
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
            row: list[Any] = [
                license_id,
                record.record_key,
                version,
                serial,
                record.license_type,
                record.issuer_department,
                status,
                status_seq,
                status_index,
                writer.date(record.valid_from),
                writer.date(record.valid_until),
                db_now,
                db_now if status != VALID else None,
                record.row_hash,
                record.source,
                record.batch_id,
                writer.timestamp(record.as_of),
                key_id,
                None,  # credential_enc, once signed
            ]
            part.rows.append(row)
            part.holders += [
                (license_id, h.role, h.holder_key, h.kind, mask_id(h.id_number))
                for h in record.holders
            ]
            part.unsigned.append(unsigned)
            part.ends.append(len(part.holders))
            batch.append(config_hash + sha256(unsigned).digest())
            if len(batch) == SIGN_BATCH:
                pending.append((submit(signer, batch), part))
                batch, part = [], _Batch([], [], [], [])
                if len(pending) >= in_flight:
                    collect(*pending.pop(0))
            superseded = None
            if previous and previous.status == VALID:
                superseded = previous.license_id
                if previous.pending is not None:
                    # Two changes of one record in one call: the first version never reached
                    # the DB (this call does not stream, see above).
                    previous.pending[_STATUS] = SUPERSEDED
                    previous.pending[_STATUS_SEQ] = previous.status_seq + 1
                    previous.pending[_CHANGED_AT] = db_now
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
            if not streaming:
                # Only a later change of the same record in this call reads it back.
                current[record.record_key] = _Current(
                    license_id, version, serial, status, status_seq, record.row_hash, *scope, row
                )
            issued.append(IssuedLicense(license_id, record.record_key, version, superseded))

        if batch:
            pending.append((submit(signer, batch), part))
        for wait, waiting in pending:
            collect(wait, waiting)
        if signed.rows:
            writer.write(signed)
        writer.finish()
    finally:
        writer.close()

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
    config_hash = sha256(canonicalize(config)).digest()
    head = json.dumps(config, ensure_ascii=False, separators=(",", ":"))[:-1]
    return (head + ',"proofValue":"').encode("utf-8"), config_hash


def _seal(
    batch: _Batch, proof_values: Sequence[bytes], proof_head: bytes, cipher: Cipher
) -> list[bytes]:
    """The stored tokens (ASCII) of a batch of signed credentials."""
    # The stored text is the unsigned canonical JSON with the proof appended as its last member:
    # still one JSON object with the same members, without canonicalizing it a second time.
    join = b"".join
    # A generator: each signed text is sealed and dropped before the next is made.
    signed = (
        join((memoryview(unsigned)[:-1], b',"proof":', proof_head, proof_value, b'"}}'))
        for unsigned, proof_value in zip(batch.unsigned, proof_values, strict=True)
    )
    license_ids = [row[0] for row in batch.rows]
    # The credential names the holders' ID numbers: it is only ever stored encrypted.
    if isinstance(cipher, BatchCipher):
        return cipher.encrypt_batch(signed, license_ids)
    return [
        cipher.encrypt(text, aad=license_id).encode("ascii")
        for text, license_id in zip(signed, license_ids, strict=True)
    ]


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
            scopes[scope] = _identifier_scope(type_codes[license_type], issuer_codes[issuer])
        except LicenseIdentifierError as exc:
            raise UnknownLicenseTypeError(
                f"catalog code for {license_type!r}/{issuer!r} is malformed: {exc.message}"
            ) from None
    return scopes


@lru_cache(maxsize=256)
def _identifier_scope(type_code: str, issuer_code: str) -> IdentifierScope:
    # Kept across calls: its memo of check-character states is then warm from the first record.
    return IdentifierScope(type_code, issuer_code)


_CURRENT_COLUMNS: Final = (
    "record_key",
    "license_id",
    "version",
    "serial",
    "status",
    "status_seq",
    "row_hash",
    "license_type",
    "issuer_department",
)
# The keys go as one JSON array parameter (encoded in C; a driver's array adapter works key by
# key in Python). PostgreSQL: a lateral join of each key's latest version (ORDER BY version
# DESC LIMIT 1), so every key is one probe of the (record_key, version) index whatever the
# planner's statistics say: without the LIMIT, a store that was never analyzed (a freshly
# seeded one) got a hash join over a sequential scan of every license, once per call. SQLite:
# IN over json_each, which it answers with probes of the same index.
_CURRENT_PG: Final = text(
    "SELECT "
    + ", ".join(f"l.{name}" for name in _CURRENT_COLUMNS)
    + " FROM json_array_elements_text(CAST(:keys AS json)) AS k(record_key)"
    " CROSS JOIN LATERAL (SELECT * FROM licenses WHERE licenses.record_key = k.record_key"
    " ORDER BY licenses.version DESC LIMIT 1) AS l"
)
_CURRENT_SQLITE: Final = text(
    f"SELECT {', '.join(_CURRENT_COLUMNS)} FROM licenses"
    " WHERE record_key IN (SELECT value FROM json_each(:keys))"
)
_JSON: Final = msgspec.json.Encoder()


def _load_current(session: Session, record_keys: set[str]) -> dict[str, _Current]:
    latest: dict[str, _Current] = {}
    if not record_keys:
        return latest
    dialect = session.get_bind().dialect.name
    query = {"postgresql": _CURRENT_PG, "sqlite": _CURRENT_SQLITE}.get(dialect)
    columns = [getattr(License, name) for name in _CURRENT_COLUMNS]
    size = _CHUNK if query is None else 10 * _CHUNK
    ordered = sorted(record_keys)
    for start in range(0, len(ordered), size):
        chunk = ordered[start : start + size]
        rows = (
            session.execute(select(*columns).where(License.record_key.in_(chunk)))
            if query is None
            else session.execute(query, {"keys": _JSON.encode(chunk).decode("utf-8")})
        )
        # Plain tuples: a Row's attribute lookup costs more than the rest of the loop.
        for record_key, license_id, version, *rest in rows:
            seen = latest.get(record_key)
            if seen is None or version > seen.version:
                latest[record_key] = _Current(license_id, version, *rest)
    return latest


def _is_unchanged(previous: _Current | None, row_hash: str) -> bool:
    return previous is not None and previous.status in _KEEPS and previous.row_hash == row_hash


def _reserve_indexes(session: Session, count: int) -> Sequence[int]:
    """Return ``count`` status-list indexes nobody else has (unused ones become harmless gaps).

    On PostgreSQL they come from a sequence, which is never rolled back and never blocks, so
    several issuers can run at once. Elsewhere (SQLite has one writer anyway) they follow the
    highest index in the store; two concurrent issuers would then take the same index and one
    fails on the unique constraint (ConcurrentIssuanceError, retriable).
    """
    if count == 0:
        return []
    if session.get_bind().dialect.name == "postgresql" and session.scalar(
        text(f"SELECT to_regclass('{STATUS_INDEX_SEQUENCE.name}')")
    ):
        drawn, highest = _draw(session, count)
        if highest is None or drawn[0] > highest:
            return drawn
        # The sequence is behind the store (licenses issued before it existed): move it past
        # the highest index, once, and draw again. Monotonic, so it never hands a number twice.
        session.execute(
            text(
                f"SELECT setval('{STATUS_INDEX_SEQUENCE.name}', GREATEST(:highest,"
                f" (SELECT last_value FROM {STATUS_INDEX_SEQUENCE.name})))"
            ),
            {"highest": highest},
        )
        return _draw(session, count)[0]
    highest = session.scalar(select(func.max(License.status_index)))
    first = 0 if highest is None else highest + 1
    return range(first, first + count)


def _draw(session: Session, count: int) -> tuple[Sequence[int], int | None]:
    """Draw ``count`` numbers from the sequence; also the highest index already in the store.

    One statement: the drawn numbers come back as a range when they are consecutive (one issuer
    at a time), as an array (parsed by the driver in C) only when another issuer drew between.
    """
    first, last, drawn, highest = session.execute(_DRAW, {"n": count}).one()
    if drawn is None:
        return range(first, last + 1), highest
    return sorted(drawn), highest


_DRAW: Final = text(
    "SELECT min(v), max(v),"
    " CASE WHEN max(v) - min(v) + 1 <> count(*) THEN array_agg(v) END,"
    " (SELECT max(status_index) FROM licenses)"
    f" FROM (SELECT nextval('{STATUS_INDEX_SEQUENCE.name}') AS v FROM generate_series(1, :n)) AS d"
)


def _take_serial(
    session: Session, next_serial: dict[tuple[str, str], int], scope: tuple[str, str]
) -> int:
    # A counter per (type, issuer): unique by construction, and read once per call. Two
    # concurrent issuers would pick the same number and one fails on the unique constraint.
    if scope not in next_serial:
        # ORDER BY ... LIMIT 1 rather than max(): one step down the (type, issuer, serial)
        # index whatever the planner's statistics say (without them, PostgreSQL aggregated
        # every entry of the type).
        highest = session.scalar(
            select(License.serial)
            .where(License.license_type == scope[0], License.issuer_department == scope[1])
            .order_by(License.serial.desc())
            .limit(1)
        )
        next_serial[scope] = (highest or 0) + 1
    serial = next_serial[scope]
    if serial > MAX_SERIAL:
        raise FatalError(
            f"serial numbers of {scope} are exhausted", code="license_serial_exhausted"
        )
    next_serial[scope] = serial + 1
    return serial


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


class _RowWriter:
    """Writes license and holder rows in the session's transaction, as fast as the database allows.

    PostgreSQL (psycopg): COPY, run in a background thread, so the server inserts and indexes
    one batch while this process builds and signs the next (psycopg waits on the socket without
    the GIL). Licenses go in the binary format, so the server takes each 2 kB token by its
    length instead of scanning it byte by byte for delimiters and escapes (its CPU per license
    fell by about a fifth, bench/issuance.py); holder rows are short and go as text.
    SQLite: INSERTs of many rows each (``_SQLITE_ROWS``) on the driver connection, also in the
    background thread: sqlite3 lets the GIL go while SQLite runs a statement, and Ed25519 signing
    (libsodium, via cffi) lets it go while it signs, so SQLite's B-tree inserts and WAL writes run
    on another core beside the signing.
    The issuing thread must not use the connection meanwhile: :meth:`finish` first. Any other
    database: SQLAlchemy Core bulk INSERT, in the issuing thread. Values are converted by the
    column types' own bind processors, once per distinct value, so what is stored is what
    SQLAlchemy would write.
    """

    def __init__(self, session: Session) -> None:
        connection = session.connection()
        dialect = connection.dialect
        self._session = session
        self._mode = "core"
        if dialect.name == "postgresql" and dialect.driver == "psycopg":
            self._mode = "copy"
        elif dialect.name == "sqlite" and dialect.driver == "pysqlite":
            self._mode = "insert"
        self._raw: Any = connection.connection.driver_connection if self._mode != "core" else None
        # Bound variables one SQLite statement may take: 32,766 from SQLite 3.32, 999 before.
        self._variable_limit = (
            self._raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
            if isinstance(self._raw, sqlite3.Connection)
            else 0
        )
        self._integrity: type[Exception] = (
            dialect.loaded_dbapi.IntegrityError if self._mode != "core" else IntegrityError
        )
        table = License.__table__
        self.date = _converter(table.c.valid_from.type, dialect, mode=self._mode)
        self.timestamp = _converter(table.c.issued_at.type, dialect, mode=self._mode)
        self._pool: ThreadPoolExecutor | None = None
        self._futures: list[Future[None]] = []
        # Binary COPY fields of the values a batch repeats (codes, dates, source, key id).
        self._packed: dict[Any, bytes] = {}
        # COPY data written and not yet flushed.
        self._licenses: list[bytes] = []
        self._holders: list[bytes] = []
        # SQLite rows written and not yet flushed.
        self._rows: list[tuple[list[list[Any]], list[tuple[str, str, str, str, str]]]] = []

    def credentials(self, tokens: list[bytes]) -> list[Any]:
        """The credential column's values of some tokens: bytes for COPY, else str."""
        if self._mode == "copy":
            return tokens
        return [token.decode("ascii") for token in tokens]

    def write(self, batch: _Batch) -> None:
        """Write the (signed) rows of a batch; on PostgreSQL and SQLite they land after flush()."""
        rows = batch.rows
        holders = batch.holders
        if self._mode == "copy":
            # The COPY data is made here (a few joins) and only sent from the thread (see
            # flush), which then needs the GIL for next to nothing while the server inserts and
            # indexes on its own core.
            self._licenses.append(_license_binary(rows, self._packed))
            self._holders.append(_holder_lines(holders))
            return
        if self._mode == "insert":
            self._rows.append((rows, holders))
            return
        try:
            self._session.execute(
                insert(License.__table__),  # type: ignore[arg-type]
                [dict(zip(_LICENSE_COLUMNS, row, strict=True)) for row in rows],
            )
            self._session.execute(
                insert(LicenseHolder.__table__),  # type: ignore[arg-type]
                [dict(zip(_HOLDER_COLUMNS, holder, strict=True)) for holder in holders],
            )
        except self._integrity:
            raise _concurrent() from None

    def flush(self) -> None:
        """Send what write() has gathered since the last flush to the background thread."""
        if not self._licenses and not self._rows:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="issue-write")
        if self._mode == "insert":
            parts, self._rows = self._rows, []
            self._futures.append(self._pool.submit(self._insert, parts))
            return
        data = (self._licenses, self._holders)
        self._licenses, self._holders = [], []
        self._futures.append(self._pool.submit(self._copy, *data))

    def finish(self) -> None:
        """Wait until every row written so far is in the database (or raise its error)."""
        self.flush()
        futures, self._futures = self._futures, []
        try:
            for future in futures:
                future.result()
        except self._integrity:
            raise _concurrent() from None

    def close(self) -> None:
        """Stop the background thread (after any write it is running)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _insert(
        self, parts: list[tuple[list[list[Any]], list[tuple[str, str, str, str, str]]]]
    ) -> None:
        cursor = self._raw.cursor()
        try:
            for rows, holders in parts:
                self._insert_rows(cursor, "licenses", _LICENSE_COLUMNS, rows)
                self._insert_rows(cursor, "license_holders", _HOLDER_COLUMNS, holders)
        finally:
            cursor.close()

    def _insert_rows(
        self, cursor: Any, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """INSERT many rows per statement (see _SQLITE_ROWS), within the bound-variable limit."""
        per_statement = max(1, min(_SQLITE_ROWS, self._variable_limit // len(columns)))
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            values = list(chain.from_iterable(chunk))
            cursor.execute(_insert_sql(table, columns, len(chunk)), values)

    def _copy(self, licenses: list[bytes], holders: list[bytes]) -> None:
        with self._raw.cursor() as cursor:
            with cursor.copy(_copy_sql("licenses", _LICENSE_COLUMNS, binary=True)) as copy:
                copy.write(_BINARY_HEADER)
                for data in licenses:
                    copy.write(data)
                copy.write(_BINARY_TRAILER)
            with cursor.copy(_copy_sql("license_holders", _HOLDER_COLUMNS)) as copy:
                for data in holders:
                    copy.write(data)


# PostgreSQL's binary COPY format: signature, flags and header extension length, then tuples.
_BINARY_HEADER: Final = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_BINARY_TRAILER: Final = b"\xff\xff"
_LENGTH: Final = struct.Struct(">i").pack
# Tuple header (the field count) and the first field's length; int4 and int8 with lengths.
_ROW_HEAD: Final = struct.Struct(">hi").pack
_INT4_INT8: Final = struct.Struct(">iiiq").pack
_INT4: Final = struct.Struct(">ii").pack
_FIELDS: Final = len(_LICENSE_COLUMNS)
_NULL_FIELD: Final = b"\xff\xff\xff\xff"
_PG_EPOCH: Final = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_PG_EPOCH_DAY: Final = dt.date(2000, 1, 1).toordinal()
# Bound on the memo of packed values: a handful a batch shares, and the validity dates (a
# call's records may start and end on thousands of different days).
_PACKED_MEMO: Final = 1 << 14


def _pack(value: Any) -> bytes:
    """One binary COPY field (length, then value) of a repeated text, date or timestamp."""
    if value is None:
        return _NULL_FIELD
    if isinstance(value, str):
        data = value.encode("utf-8")
        return _LENGTH(len(data)) + data
    if isinstance(value, dt.datetime):
        micros = (value - _PG_EPOCH) // dt.timedelta(microseconds=1)
        return b"\x00\x00\x00\x08" + micros.to_bytes(8, "big", signed=True)
    if isinstance(value, dt.date):
        return _INT4(4, value.toordinal() - _PG_EPOCH_DAY)
    raise TypeError(f"cannot pack {type(value).__name__}")


def _license_binary(rows: Sequence[list[Any]], packed: dict[Any, bytes]) -> bytes:
    """License rows as binary COPY tuples (the column order of ``_LICENSE_COLUMNS``).

    Binary, because the server then reads the 2 kB token by its length instead of scanning it
    byte by byte for delimiters and escapes.
    """
    if len(packed) > _PACKED_MEMO:
        packed.clear()
    parts: list[bytes] = []
    for (
        license_id,
        record_key,
        version,
        serial,
        license_type,
        issuer,
        status,
        status_seq,
        status_index,
        valid_from,
        valid_until,
        issued_at,
        changed_at,
        row_hash,
        source,
        batch_id,
        as_of,
        key_id,
        credential,
    ) in rows:
        # Memo lookups for the values rows share (codes, times, source, key id) and for dates.
        head = packed.get((license_type, issuer, status))
        if head is None:
            head = packed[(license_type, issuer, status)] = b"".join(
                map(_pack, (license_type, issuer, status))
            )
        # Validity dates vary from record to record: one entry per date, not per pair.
        starts = packed.get(valid_from)
        if starts is None:
            starts = packed[valid_from] = _pack(valid_from)
        ends = packed.get(valid_until)
        if ends is None:
            ends = packed[valid_until] = _pack(valid_until)
        times = packed.get((issued_at, changed_at))
        if times is None:
            times = packed[(issued_at, changed_at)] = _pack(issued_at) + _pack(changed_at)
        tail = packed.get((source, batch_id, as_of, key_id))
        if tail is None:
            tail = packed[(source, batch_id, as_of, key_id)] = b"".join(
                map(_pack, (source, batch_id, as_of, key_id))
            )
        lid = license_id.encode()
        key = record_key.encode()
        digest = row_hash.encode()
        parts += (
            _ROW_HEAD(_FIELDS, len(lid)),
            lid,
            _LENGTH(len(key)),
            key,
            _INT4_INT8(4, version, 8, serial),
            head,
            _INT4_INT8(4, status_seq, 8, status_index),
            starts,
            ends,
            times,
            _LENGTH(len(digest)),
            digest,
            tail,
            _LENGTH(len(credential)),
            credential,
        )
    return b"".join(parts)


def _holder_lines(holders: Sequence[tuple[str, ...]]) -> bytes:
    """License holder rows in COPY text format (the column order of ``_HOLDER_COLUMNS``)."""
    # Role and kind are codes, holder_key hex, id_masked ASCII letters, digits and "*"
    # (HolderRef checks them) and the license id is ours, so the text is checked as a whole
    # (every tab and newline where the format puts one, no backslash or CR), not escaped.
    text = "".join([f"{a}\t{b}\t{c}\t{d}\t{e}\n" for a, b, c, d, e in holders])
    if (
        text.count("\t") != 4 * len(holders)
        or text.count("\n") != len(holders)
        or "\\" in text
        or "\r" in text
    ):
        text = "".join("\t".join(map(_escape, holder)) + "\n" for holder in holders)
    return text.encode("utf-8")


def _escape(text: str) -> str:
    return text.translate(_COPY_ESCAPES) if _needs_escape(text) else text


def _needs_escape(text: str) -> bool:
    # Four memchr scans: cheaper than a regular expression over a 2 KB token.
    return "\\" in text or "\t" in text or "\n" in text or "\r" in text


_COPY_ESCAPES: Final = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _concurrent() -> ConcurrentIssuanceError:
    return ConcurrentIssuanceError(
        "another issuer wrote one of these licenses first; roll back and retry"
    )


@lru_cache(maxsize=64)
def _insert_sql(table: str, columns: Sequence[str], rows: int = 1) -> str:
    values = f"({', '.join('?' * len(columns))})"
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([values] * rows)}"


def _copy_sql(table: str, columns: Sequence[str], *, binary: bool = False) -> str:
    options = " (FORMAT BINARY)" if binary else ""
    return f"COPY {table} ({', '.join(columns)}) FROM STDIN{options}"


def _converter(column_type: Any, dialect: Dialect, *, mode: str) -> Callable[[Any], Any]:
    """The column type's bind processor, memoized per value (a batch repeats its dates).

    For COPY the result is what psycopg would be given (a date, an aware UTC datetime), which
    ``_pack`` writes in the binary format.
    """
    if mode == "core":
        return _same
    process = column_type.dialect_impl(dialect).bind_processor(dialect) or _same
    cache: dict[Any, Any] = {}

    def convert(value: Any) -> Any:
        if value is None:
            return None
        found = cache.get(value)
        if found is None:
            found = cache[value] = process(value)
        return found

    return convert


def _same(value: Any) -> Any:
    return value
