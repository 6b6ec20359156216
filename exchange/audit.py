"""The tamper-evident audit log: every access to a holder's data, hash-chained.

``row_hash = sha256(prev_hash || canonical JSON of the row)``, and the one-row ``audit_head``
holds the last seq and hash. Editing, deleting or reordering a row breaks the chain at that row,
and cutting rows off the end leaves the head pointing past the last one; :func:`verify_chain`
names the first broken row either way.

Appends serialise on the head row (its row lock on PostgreSQL, the write lock on SQLite), so any
number of API processes extend one chain. The API appends through
:class:`AuditWriter`, which commits the rows of concurrent requests together (a group commit)
and answers each request only once its row is durable.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import hashlib
import logging
import os
import queue
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, cast

import asyncpg
import msgspec
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from catalog_schemas.errors import RetriableError, ValidationFailedError
from exchange.model import AuditEntry, AuditHead, AuditLicense, Consumer
from license_store.canonical import canonicalize
from license_store.model import LicenseHolder

logger = logging.getLogger(__name__)

GENESIS: Final = "0" * 64
_JSON: Final = msgspec.json.Encoder()
_HEAD_ID: Final = 1
# Column sizes (exchange.model.AuditEntry): checked before a row joins a batch, so one bad row
# can never fail the group commit of the others.
_LIMITS: Final = {"consumer": 128, "action": 32, "purpose": 256, "service_item": 64, "result": 32}


class AuditUnavailableError(RetriableError):
    """The audit row could not be made durable, so the call's answer is withheld."""

    code = "audit_unavailable"


@dataclass(frozen=True)
class Entry:
    """One access, before it is given its place in the chain."""

    at: dt.datetime
    consumer: str
    action: str
    purpose: str
    service_item: str | None
    holder_key: str | None
    licenses: tuple[str, ...] = ()
    result: str = "ok"
    request_id: str | None = None
    restricted_until: dt.date | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.at.utcoffset() is None:
            raise ValidationFailedError("an audit entry needs an aware time")
        for name, limit in _LIMITS.items():
            value = getattr(self, name)
            if value is not None and len(value) > limit:
                raise ValidationFailedError(f"audit {name} is longer than {limit} characters")
        object.__setattr__(self, "licenses", tuple(self.licenses))


def _digest(prev_hash: str, payload: dict[str, Any]) -> str:
    # canonicalize: RFC 8785 bytes (msgspec's sorted encoder for plain values, which audit
    # rows are; rfc8785 otherwise).
    return hashlib.sha256(prev_hash.encode("ascii") + canonicalize(payload)).hexdigest()


def _utc_text(at: dt.datetime) -> str:
    # SQLite hands back naive datetimes, which the hub always stores in UTC.
    aware = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).isoformat()


def _payload(row: Any) -> dict[str, Any]:
    restricted = row["restricted_until"]
    return {
        "seq": row["seq"],
        "at": _utc_text(row["at"]),
        "consumer": row["consumer"],
        "action": row["action"],
        "purpose": row["purpose"],
        "service_item": row["service_item"],
        "holder_key": row["holder_key"],
        "licenses": list(row["licenses"]),
        "result": row["result"],
        "request_id": row["request_id"],
        "restricted_until": restricted.isoformat() if restricted is not None else None,
        "detail": dict(row["detail"] or {}),
    }


def _payload_columns() -> tuple[str, ...]:
    return (
        "seq",
        "at",
        "consumer",
        "action",
        "purpose",
        "service_item",
        "holder_key",
        "licenses",
        "result",
        "request_id",
        "restricted_until",
        "detail",
    )


def _lock_head(session: Session) -> tuple[int, str]:
    """Lock the head row and return the chain's last (seq, hash); create the head if missing."""
    for _ in range(3):
        found = session.execute(
            sa.update(AuditHead)
            .where(AuditHead.id == _HEAD_ID)
            .values(seq=AuditHead.seq)
            .returning(AuditHead.seq, AuditHead.row_hash)
            .execution_options(synchronize_session=False)
        ).first()
        if found is not None:
            return int(found[0]), str(found[1])
        last = session.execute(
            sa.select(AuditEntry.seq, AuditEntry.row_hash).order_by(AuditEntry.seq.desc()).limit(1)
        ).first()
        seq, row_hash = (int(last[0]), str(last[1])) if last else (0, GENESIS)
        try:
            with session.begin_nested():
                session.execute(
                    sa.insert(AuditHead).values(id=_HEAD_ID, seq=seq, row_hash=row_hash)
                )
        except IntegrityError:
            continue  # another writer created it first: lock theirs
    raise AuditUnavailableError("could not lock the audit head", code="audit_contention")


def _row(entry: Entry, *, seq: int, prev: str) -> dict[str, Any]:
    return {
        "seq": seq,
        "at": entry.at.astimezone(dt.UTC),
        "consumer": entry.consumer,
        "action": entry.action,
        "purpose": entry.purpose,
        "service_item": entry.service_item,
        "holder_key": entry.holder_key,
        "licenses": list(entry.licenses),
        "result": entry.result,
        "request_id": entry.request_id,
        "restricted_until": entry.restricted_until,
        "detail": dict(entry.detail),
        "prev_hash": prev,
    }


def _chain(
    entries: Sequence[Entry], seq: int, prev: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows of ``entries`` chained after (seq, prev), and their license links."""
    rows: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    for entry in entries:
        seq += 1
        row = _row(entry, seq=seq, prev=prev)
        row["row_hash"] = prev = _digest(prev, _payload(row))
        rows.append(row)
        links.extend({"seq": seq, "license_id": lid} for lid in dict.fromkeys(entry.licenses))
    return rows, links


def append_entries(*, session: Session, entries: Sequence[Entry]) -> list[int]:
    """Chain ``entries`` onto the log in the caller's transaction; their seqs, in order.

    The head stays locked until the caller commits, so commit soon after.
    """
    if not entries:
        return []
    seq, prev = _lock_head(session)
    rows, links = _chain(entries, seq, prev)
    # Core inserts: the ORM's unit of work costs more than the rows here.
    session.execute(sa.insert(cast(sa.Table, AuditEntry.__table__)), rows)
    if links:
        session.execute(sa.insert(cast(sa.Table, AuditLicense.__table__)), links)
    session.execute(
        sa.update(AuditHead)
        .where(AuditHead.id == _HEAD_ID)
        .values(seq=rows[-1]["seq"], row_hash=rows[-1]["row_hash"])
        .execution_options(synchronize_session=False)
    )
    return [row["seq"] for row in rows]


# PostgreSQL: a whole batch in one statement, one round trip. The function below locks the
# head row, extends the chain in the database and commits with the statement; concurrent
# writers (every API worker has one) wait on the head's lock instead of racing for it. A
# compare-and-swap from each process, as before, lost about a third of its attempts to the
# other worker under load (each loss a wasted statement, a head read and a re-chain).
#
# The hash is the same as everywhere: sha256(prev_hash || canonical JSON of the row). The row's
# canonical JSON is made here, in Python, with the seq left out: ``before`` is every byte up to
# and including ``"seq":`` and ``after`` every byte from the comma that follows it, so the
# database only puts the seq it assigns (a bigint's decimal text, as RFC 8785 writes it) and
# the previous hash around them.
PG_APPEND_FUNCTION: Final = "onehub_audit_append_v1"
_PG_FUNCTION_ARGS: Final = (
    "timestamptz[], text[], text[], text[], text[], text[], json[], text[], text[], date[], "
    "json[], bytea[], bytea[], int[], text[]"
)
_PG_FUNCTION_DDL: Final = f"""
CREATE OR REPLACE FUNCTION {PG_APPEND_FUNCTION}(
    p_at timestamptz[], p_consumer text[], p_action text[], p_purpose text[],
    p_service_item text[], p_holder_key text[], p_licenses json[], p_result text[],
    p_request_id text[], p_restricted_until date[], p_detail json[], p_before bytea[],
    p_after bytea[], p_link_row int[], p_link_id text[]
) RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE
    head_seq bigint;
    head_hash text;
    n int := cardinality(p_at);
    prevs text[] := '{{}}';
    hashes text[] := '{{}}';
BEGIN
    SELECT seq, row_hash INTO head_seq, head_hash FROM audit_head WHERE id = 1 FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;  -- no head row yet: the caller's general path creates it
    END IF;
    FOR i IN 1 .. n LOOP
        prevs := prevs || head_hash;
        head_hash := encode(sha256(convert_to(head_hash, 'UTF8') || p_before[i]
            || convert_to((head_seq + i)::text, 'UTF8') || p_after[i]), 'hex');
        hashes := hashes || head_hash;
    END LOOP;
    INSERT INTO audit_log (seq, at, consumer, action, purpose, service_item, holder_key,
                           licenses, result, request_id, restricted_until, detail,
                           prev_hash, row_hash)
    SELECT head_seq + u.i, u.at, u.consumer, u.action, u.purpose, u.service_item, u.holder_key,
           u.licenses, u.result, u.request_id, u.restricted_until, u.detail, u.prev, u.hash
    FROM unnest(p_at, p_consumer, p_action, p_purpose, p_service_item, p_holder_key,
                p_licenses, p_result, p_request_id, p_restricted_until, p_detail, prevs, hashes)
         WITH ORDINALITY AS u(at, consumer, action, purpose, service_item, holder_key, licenses,
                              result, request_id, restricted_until, detail, prev, hash, i);
    INSERT INTO audit_licenses (seq, license_id)
    SELECT head_seq + l.row_number, l.license_id
    FROM unnest(p_link_row, p_link_id) AS l(row_number, license_id);
    UPDATE audit_head SET seq = head_seq + n, row_hash = head_hash WHERE id = 1;
    RETURN head_seq + 1;
END
$fn$
"""
_PG_APPEND: Final = (
    f"SELECT {PG_APPEND_FUNCTION}("
    "%(at)s::timestamptz[], %(consumer)s::text[], %(action)s::text[], %(purpose)s::text[], "
    "%(service_item)s::text[], %(holder_key)s::text[], %(licenses)s::text[]::json[], "
    "%(result)s::text[], %(request_id)s::text[], %(restricted_until)s::date[], "
    "%(detail)s::text[]::json[], %(before)s::bytea[], %(after)s::bytea[], "
    "%(link_row)s::int[], %(link_id)s::text[])"
)
_PG_EXISTS: Final = (
    f"SELECT to_regprocedure('{PG_APPEND_FUNCTION}({_PG_FUNCTION_ARGS})') IS NOT NULL"
)
_SEQ_MARK: Final = b',"seq":0,"service_item":'


def _split_at_seq(entry: Entry) -> tuple[bytes, bytes]:
    """The row's canonical JSON without its seq: the bytes before the seq's digits and after."""
    payload = _payload(_row(entry, seq=0, prev=GENESIS))
    text = canonicalize(payload)
    # "seq" is the second-last key, and the last one's value is a string or null, so the last
    # occurrence is the row's own (a key inside "detail" comes earlier).
    cut = text.rfind(_SEQ_MARK)
    if cut < 0:
        raise AssertionError("the canonical row has no seq")  # pragma: no cover
    digits = cut + len(b',"seq":')
    return text[:digits], text[digits + 1 :]


def _pg_batch(entries: Sequence[Entry]) -> dict[str, Any]:
    """The parameters of _PG_APPEND for ``entries`` (chained in the database)."""
    params: dict[str, Any] = {
        "at": [entry.at.astimezone(dt.UTC) for entry in entries],
        "consumer": [entry.consumer for entry in entries],
        "action": [entry.action for entry in entries],
        "purpose": [entry.purpose for entry in entries],
        "service_item": [entry.service_item for entry in entries],
        "holder_key": [entry.holder_key for entry in entries],
        "licenses": [_JSON.encode(list(entry.licenses)).decode() for entry in entries],
        "result": [entry.result for entry in entries],
        "request_id": [entry.request_id for entry in entries],
        "restricted_until": [entry.restricted_until for entry in entries],
        "detail": [_JSON.encode(dict(entry.detail)).decode() for entry in entries],
        "link_row": [],
        "link_id": [],
    }
    split = [_split_at_seq(entry) for entry in entries]
    params["before"] = [before for before, _ in split]
    params["after"] = [after for _, after in split]
    for number, entry in enumerate(entries, start=1):
        for license_id in dict.fromkeys(entry.licenses):
            params["link_row"].append(number)
            params["link_id"].append(license_id)
    return params


def ensure_pg_function(connection: sa.Connection) -> None:
    """Create the append function if the database lacks it (``onehub init`` and each writer's
    first append do this; two processes at once are fine)."""
    for _ in range(3):
        if connection.exec_driver_sql(_PG_EXISTS).scalar_one():
            return
        try:
            connection.exec_driver_sql(_PG_FUNCTION_DDL.replace("%", "%%"))
            connection.commit()
            return
        except DBAPIError:
            connection.rollback()  # created by another process at the same moment: look again
    raise AuditUnavailableError("could not create the audit append function")


async def _ensure_pg_function_async(connection: asyncpg.Connection) -> None:
    for _ in range(3):
        if await connection.fetchval(_PG_EXISTS):
            return
        try:
            await connection.execute(_PG_FUNCTION_DDL)
            return
        except asyncpg.PostgresError:
            continue  # created by another process at the same moment: look again
    raise AuditUnavailableError("could not create the audit append function")


def _append_postgresql(connection: sa.Connection, entries: Sequence[Entry]) -> list[int] | None:
    """Append ``entries`` in one autocommitted statement; their seqs, or None without a head."""
    first = connection.exec_driver_sql(_PG_APPEND, _pg_batch(entries)).scalar_one()
    return None if first is None else list(range(int(first), int(first) + len(entries)))


# _PG_APPEND with asyncpg's positional parameters ($1, $2, ...), in the order of the names.
_PG_APPEND_NAMES: Final = tuple(dict.fromkeys(re.findall(r"%\((\w+)\)s", _PG_APPEND)))
_PG_APPEND_POSITIONAL: Final = re.sub(
    r"%\((\w+)\)s", lambda m: f"${_PG_APPEND_NAMES.index(m.group(1)) + 1}", _PG_APPEND
)


def append(*, session: Session, entry: Entry) -> int:
    """Append one row in the caller's transaction (commit it with the change it records)."""
    return append_entries(session=session, entries=[entry])[0]


def _fail(
    futures: Iterable[concurrent.futures.Future[int] | asyncio.Future[int]],
    cause: BaseException | None,
) -> None:
    """Answer each waiting call with AuditUnavailableError: its row was not written."""
    for future in futures:
        if not future.done():
            failure = AuditUnavailableError("the audit log could not be written")
            failure.__cause__ = cause
            future.set_exception(failure)


@dataclass
class _Pending:
    entry: Entry
    future: concurrent.futures.Future[int]


class AuditWriter:
    """Appends the rows of concurrent requests in one transaction each (group commit).

    One thread per process, started on first use (and again in a forked child). ``append``
    returns only when the row is committed; if it cannot be, it raises AuditUnavailableError
    and the request must not answer with the data.
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        max_batch: int = 256,
        timeout_seconds: float = 30.0,
        on_commit: Callable[[int], None] | None = None,
    ) -> None:
        self._engine = engine
        self._sessions = sessionmaker(engine)
        self._max_batch = max_batch
        self._timeout = timeout_seconds
        self._on_commit = on_commit
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._function_ready = False

    def submit(self, entry: Entry) -> concurrent.futures.Future[int]:
        """Queue ``entry``; the future gives its seq once committed."""
        self._ensure_thread()
        future: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._queue.put(_Pending(entry, future))
        return future

    def append(self, entry: Entry) -> int:
        """Append ``entry`` and wait until it is durable; its seq."""
        future = self.submit(entry)
        try:
            return future.result(timeout=self._timeout)
        except concurrent.futures.TimeoutError:
            raise AuditUnavailableError("the audit log did not answer in time") from None

    def close(self) -> None:
        """Write what is queued, then stop the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None and self._pid == os.getpid():
            self._queue.put(None)
            thread.join(timeout=self._timeout)

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._pid == os.getpid():
            return
        with self._lock:
            if self._thread is None or self._pid != os.getpid():
                self._queue = queue.SimpleQueue()  # a forked child must not share the parent's
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            try:
                self._write(batch)
            except Exception as exc:  # a bug must not leave calls waiting forever
                logger.exception("audit writer failed on a batch of %d", len(batch))
                _fail((pending.future for pending in batch), exc)

    def _append(self, entries: list[Entry]) -> list[int]:
        if self._engine.dialect.name == "postgresql":
            with self._engine.connect().execution_options(
                isolation_level="AUTOCOMMIT"
            ) as connection:
                if not self._function_ready:
                    ensure_pg_function(connection)
                    self._function_ready = True
                seqs = _append_postgresql(connection, entries)
                if seqs is not None:
                    return seqs
        # SQLite, or no head row yet on PostgreSQL: one transaction with the head locked.
        with self._sessions() as session, session.begin():
            return append_entries(session=session, entries=entries)

    def _write(self, batch: list[_Pending]) -> None:
        error: BaseException | None = None
        for attempt in range(3):
            try:
                seqs = self._append([p.entry for p in batch])
            except (DBAPIError, RetriableError) as exc:
                # A lost connection or a lock timeout: the transaction rolled back, so retrying
                # cannot write a row twice.
                error = exc
                logger.warning(
                    "audit batch of %d failed (attempt %d): %s",
                    len(batch),
                    attempt + 1,
                    type(exc).__name__,
                )
                continue
            for pending, seq in zip(batch, seqs, strict=True):
                pending.future.set_result(seq)
            if self._on_commit is not None:
                self._on_commit(len(batch))
            return
        logger.error("audit batch of %d could not be written", len(batch))
        _fail((pending.future for pending in batch), error)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class AsyncAuditWriter:
    """The group-commit writer of an asyncio server on PostgreSQL: no thread, no ORM.

    Entries submitted on the event loop wait in a list; one task per loop writes what has
    gathered in one autocommitted statement (_PG_APPEND through asyncpg: the append function
    locks the chain head and chains the rows in the database), then resolves each entry's
    future with its seq. While a batch is being
    written the next one gathers, so the rows of concurrent requests share a commit.
    Same chain, same rows as :class:`AuditWriter`; a database without a head row yet is
    started by the general path (in a thread), once.

    Calls that will submit a row say so first (:meth:`expect`, then :meth:`settle` once they
    have submitted or failed). Before writing, the writer waits for the calls that were under
    way when it woke, at most ``gather_seconds``: a commit costs PostgreSQL a WAL flush and the
    server a round trip whatever its size, so rows of calls a few hundred microseconds apart
    are better committed together (measured: bench/results/load.md).
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        max_batch: int = 256,
        on_commit: Callable[[int], None] | None = None,
        gather_seconds: float = 0.002,
    ) -> None:
        self._engine = engine
        self._dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._sessions = sessionmaker(engine)
        self._max_batch = max_batch
        self._on_commit = on_commit
        self._pending: list[tuple[Entry, asyncio.Future[int]]] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connection: Any = None
        self._gather_seconds = gather_seconds
        self._tickets = 0
        self._under_way: set[int] = set()  # calls that expect to submit a row
        self._awaited: set[int] = set()  # of those, the ones the writer is waiting for
        self._all_in: asyncio.Future[None] | None = None

    def expect(self) -> int:
        """A call that will submit a row (or settle without one) is under way; its ticket."""
        self._tickets += 1
        self._under_way.add(self._tickets)
        return self._tickets

    def settle(self, ticket: int) -> None:
        """The call of ``ticket`` has submitted its rows, or will submit none."""
        self._under_way.discard(ticket)
        if ticket in self._awaited:
            self._awaited.discard(ticket)
            if not self._awaited and self._all_in is not None and not self._all_in.done():
                self._all_in.set_result(None)

    async def _gather(self) -> None:
        """Wait (at most gather_seconds) until the calls under way now have submitted."""
        if not self._under_way or len(self._pending) >= self._max_batch:
            return
        loop = asyncio.get_running_loop()
        self._awaited = set(self._under_way)
        self._all_in = all_in = loop.create_future()
        timer = loop.call_later(self._gather_seconds, _resolve, all_in)
        try:
            await all_in
        finally:
            timer.cancel()
            self._awaited.clear()
            self._all_in = None

    def submit(self, entry: Entry) -> asyncio.Future[int]:
        """Queue ``entry`` (on the event loop); the future gives its seq once committed."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self._wake = asyncio.Event()
            self._connection = None
            self._task = loop.create_task(self._run(self._wake), name="audit-writer")
        future: asyncio.Future[int] = loop.create_future()
        self._pending.append((entry, future))
        assert self._wake is not None
        self._wake.set()
        return future

    async def close(self) -> None:
        """Write what is queued, then stop."""
        task, self._task = self._task, None
        if task is None or self._loop is not asyncio.get_running_loop():
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if self._pending:
            await self._write(self._take())
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    def _take(self) -> list[tuple[Entry, asyncio.Future[int]]]:
        batch, self._pending = (
            self._pending[: self._max_batch],
            self._pending[self._max_batch :],
        )
        return batch

    async def _run(self, wake: asyncio.Event) -> None:
        while True:
            await wake.wait()
            wake.clear()
            while self._pending:
                await self._gather()
                await self._write(self._take())

    async def _write(self, batch: list[tuple[Entry, asyncio.Future[int]]]) -> None:
        error: BaseException | None = None
        for attempt in range(3):
            try:
                seqs = await self._append([entry for entry, _ in batch])
            except Exception as exc:  # asyncpg's errors, a lost connection, a timeout
                if self._connection is not None:
                    self._connection.terminate()
                    self._connection = None
                error = exc
                logger.warning(
                    "audit batch of %d failed (attempt %d): %s",
                    len(batch),
                    attempt + 1,
                    type(exc).__name__,
                )
                continue
            for (_, future), seq in zip(batch, seqs, strict=True):
                if not future.done():
                    future.set_result(seq)
            if self._on_commit is not None:
                self._on_commit(len(batch))
            return
        logger.error("audit batch of %d could not be written", len(batch))
        _fail((future for _, future in batch), error)

    async def _append(self, entries: list[Entry]) -> list[int]:
        if self._connection is None:
            connection = await asyncpg.connect(self._dsn)
            try:
                await _ensure_pg_function_async(connection)
            except BaseException:
                connection.terminate()
                raise
            self._connection = connection
        params = _pg_batch(entries)
        first = await self._connection.fetchval(
            _PG_APPEND_POSITIONAL, *(params[name] for name in _PG_APPEND_NAMES)
        )
        if first is not None:
            return list(range(first, first + len(entries)))
        # No head row yet: the general path creates it (once per database).
        return await asyncio.to_thread(self._append_in_session, entries)

    def _append_in_session(self, entries: list[Entry]) -> list[int]:
        with self._sessions() as session, session.begin():
            return append_entries(session=session, entries=entries)


@dataclass(frozen=True)
class ChainBreak:
    """Where the chain breaks: the first row that is missing, altered or out of place."""

    seq: int
    reason: str

    def __str__(self) -> str:
        return f"row {self.seq}: {self.reason}"


def verify_chain(*, session: Session) -> ChainBreak | None:
    """Walk the chain; the first broken row, or None when the chain is whole."""
    prev = GENESIS
    expected = 1
    query = sa.select(
        *(getattr(AuditEntry, c) for c in _payload_columns()),
        AuditEntry.prev_hash,
        AuditEntry.row_hash,
    ).order_by(AuditEntry.seq)
    for row in session.execute(query.execution_options(yield_per=2000)).mappings():
        if row["seq"] != expected:
            return ChainBreak(expected, "missing (deleted, or the rows after it were moved)")
        if row["prev_hash"] != prev:
            return ChainBreak(row["seq"], "does not follow the row before it (reordered or edited)")
        if row["row_hash"] != _digest(prev, _payload(row)):
            return ChainBreak(row["seq"], "altered (its hash does not match its content)")
        prev = row["row_hash"]
        expected += 1
    last = expected - 1
    head = session.get(AuditHead, _HEAD_ID)
    if head is None:
        return ChainBreak(last, "the chain head is missing") if last else None
    if head.seq > last:
        return ChainBreak(last + 1, "missing (rows were cut off the end of the chain)")
    if head.seq < last:
        return ChainBreak(head.seq + 1, "added behind the chain head")
    if head.row_hash != prev:
        return ChainBreak(last, "altered (the chain head holds another hash)")
    return None


@dataclass(frozen=True)
class Access:
    """One line of a holder's access history."""

    seq: int
    at: dt.datetime
    consumer: str
    consumer_kind: str | None
    department: str | None
    action: str
    purpose: str
    service_item: str | None
    licenses: tuple[str, ...]
    result: str


def access_history(
    *,
    session: Session,
    holder_key: str,
    today: dt.date,
    limit: int = 100,
    before_seq: int | None = None,
) -> list[Access]:
    """Every access to the holder's data, newest first; embargoed rows only after their date.

    An access counts when it named the holder or touched a license the holder is on (a lookup
    of one spouse reads the other's marriage certificate too).
    """
    via_license = (
        sa.select(AuditLicense.seq)
        .join(LicenseHolder, LicenseHolder.license_id == AuditLicense.license_id)
        .where(LicenseHolder.holder_key == holder_key)
    )
    query = (
        sa.select(AuditEntry, Consumer.kind, Consumer.department)
        .outerjoin(Consumer, Consumer.name == AuditEntry.consumer)
        .where(sa.or_(AuditEntry.holder_key == holder_key, AuditEntry.seq.in_(via_license)))
        .where(sa.or_(AuditEntry.restricted_until.is_(None), AuditEntry.restricted_until <= today))
        .order_by(AuditEntry.seq.desc())
        .limit(limit)
    )
    if before_seq is not None:
        query = query.where(AuditEntry.seq < before_seq)
    return [
        Access(
            seq=row.seq,
            at=row.at if row.at.tzinfo else row.at.replace(tzinfo=dt.UTC),
            consumer=row.consumer,
            consumer_kind=kind,
            department=department,
            action=row.action,
            purpose=row.purpose,
            service_item=row.service_item,
            licenses=tuple(row.licenses),
            result=row.result,
        )
        for row, kind, department in session.execute(query)
    ]
