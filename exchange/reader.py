"""What a holder call reads: the caller's consumer row, the holder's licenses and consents.

Two readers give the API the same answers:

- :class:`SessionReader` works on any SQLAlchemy database (SQLite by default): its reads run in
  a worker thread, each in its own session.
- :class:`PostgresReader` is the hot path of lookups and material checks on PostgreSQL:
  asyncpg on the event loop, with a connection pool and prepared statements. No thread hop,
  no ORM.

Both run the same statements (built once with SQLAlchemy here, in exchange.consumer and in
exchange.consent) and hand rows to the same pure functions (exchange.consumer.admit,
exchange.consent.covering), so what a call decides does not depend on the reader.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import datetime as dt
import json
import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import anyio.to_thread
import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, sessionmaker

from catalog_schemas.errors import RetriableError
from exchange.consent import CONSENTS_FOR_HOLDER, consents_for_holder, covering
from exchange.consumer import CONSUMER_BY_KEY_ID
from license_store.model import SUPERSEDED, License, LicenseHolder

logger = logging.getLogger(__name__)


class StoreUnavailableError(RetriableError):
    """The license store could not be reached (a restart, a lost connection): retry."""

    code = "database_unavailable"
    http_status = 503


# What asyncpg raises when the server is away; a query error is not among them.
_UNREACHABLE = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
)


@contextlib.asynccontextmanager
async def _reachable() -> AsyncIterator[None]:
    try:
        yield
    except _UNREACHABLE as exc:
        logger.warning("license store unavailable: %s", type(exc).__name__)
        raise StoreUnavailableError("the license store is unavailable") from exc


@dataclass(frozen=True)
class Held:
    """A current license of the holder, with the roles the holder has on it."""

    license_id: str
    license_type: str
    version: int
    status: str
    valid_until: dt.date | None
    issuer_department: str
    source: str
    batch_id: str
    as_of: dt.datetime
    credential_enc: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class HolderRows:
    """What a lookup or material check reads about one holder."""

    held: list[Held]
    # License type (or "*") -> id of an active consent for this consumer and purpose; empty
    # when the call needed none.
    consents: dict[str, str]


@dataclass(frozen=True)
class Prefetched:
    """A holder's rows read together with the caller's consumer row, before the caller is
    known: every consent of the holder for that consumer, not yet filtered by purpose."""

    holder_key: str
    held: list[Held]
    consent_rows: list[Mapping[str, Any]]

    def rows(self, *, purpose: str, now: dt.datetime, consents: bool) -> HolderRows:
        """The HolderRows a call with this purpose would have read."""
        covered = covering(self.consent_rows, purpose=purpose, now=now) if consents else {}
        return HolderRows(held=self.held, consents=covered)


class Reader(Protocol):
    """Where the API reads holder calls from."""

    async def caller_and_holder(
        self, key_id: str, holder_key: str
    ) -> tuple[Mapping[str, Any] | None, Prefetched]:
        """The consumers row with this key id and, in the same read, the holder's rows."""
        ...

    async def consumer(self, key_id: str) -> Mapping[str, Any] | None:
        """The consumers row with this key id, if any."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


_LICENSES = cast(sa.Table, License.__table__)
_HOLDERS = cast(sa.Table, LicenseHolder.__table__)
_HELD_COLUMNS = (
    "license_id",
    "license_type",
    "version",
    "status",
    "valid_until",
    "issuer_department",
    "source",
    "batch_id",
    "as_of",
    "credential_enc",
)
HELD_LICENSES = (
    sa.select(*(_LICENSES.c[name] for name in _HELD_COLUMNS), _HOLDERS.c.role)
    .join(_HOLDERS, _HOLDERS.c.license_id == _LICENSES.c.license_id)
    .where(_HOLDERS.c.holder_key == sa.bindparam("holder_key"))
    .where(_LICENSES.c.status != SUPERSEDED)
    .order_by(_LICENSES.c.license_type, _LICENSES.c.license_id)
)


def held_from_rows(rows: Iterable[Sequence[Any]]) -> list[Held]:
    """Fold (license columns..., role) rows into one Held per license, in query order."""
    held: dict[str, Held] = {}
    width = len(_HELD_COLUMNS)
    for row in rows:
        seen = held.get(row[0])
        if seen is None:
            held[row[0]] = Held(**dict(zip(_HELD_COLUMNS, row, strict=False)), roles=(row[width],))
        else:
            held[row[0]] = dataclasses.replace(seen, roles=(*seen.roles, row[width]))
    return list(held.values())


def read_held(session: Session, holder_key: str) -> list[Held]:
    """The holder's current (not superseded) licenses, through the holder_key index."""
    return held_from_rows(session.connection().execute(HELD_LICENSES, {"holder_key": holder_key}))


class SessionReader:
    """Reads through SQLAlchemy sessions, each read in a worker thread."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    async def consumer(self, key_id: str) -> Mapping[str, Any] | None:
        return await anyio.to_thread.run_sync(self._consumer, key_id)

    def _consumer(self, key_id: str) -> Mapping[str, Any] | None:
        with self._sessions() as session:
            row = session.connection().execute(CONSUMER_BY_KEY_ID, {"key_id": key_id})
            found = row.mappings().first()
            return dict(found) if found is not None else None

    async def caller_and_holder(
        self, key_id: str, holder_key: str
    ) -> tuple[Mapping[str, Any] | None, Prefetched]:
        def run() -> tuple[Mapping[str, Any] | None, Prefetched]:
            with self._sessions() as session:
                connection = session.connection()
                found = connection.execute(CONSUMER_BY_KEY_ID, {"key_id": key_id}).mappings()
                row = found.first()
                consumer = dict(row) if row is not None else None
                given: list[Mapping[str, Any]] = []
                if consumer is not None:
                    params = {"holder_key": holder_key, "consumer": consumer["name"]}
                    given = [
                        dict(r) for r in connection.execute(CONSENTS_FOR_HOLDER, params).mappings()
                    ]
                held = read_held(session, holder_key)
                return consumer, Prefetched(holder_key=holder_key, held=held, consent_rows=given)

        return await anyio.to_thread.run_sync(run)

    async def close(self) -> None:
        return None


class _Statement:
    """A SQLAlchemy statement compiled once for asyncpg, with its literal parameters."""

    def __init__(self, statement: sa.Select[Any]) -> None:
        compiled = statement.compile(dialect=postgresql.asyncpg.dialect())  # type: ignore[no-untyped-call]
        self.sql = str(compiled)
        self._names: list[str] = list(compiled.positiontup or ())
        self._fixed = dict(compiled.params)

    def args(self, **values: Any) -> list[Any]:
        """The positional arguments, the named ``values`` filled in."""
        return [values[name] if name in values else self._fixed[name] for name in self._names]


def _json_rows(query: sa.Select[Any]) -> sa.ScalarSelect[Any]:
    rows = query.subquery()
    return sa.select(sa.func.json_agg(rows.table_valued())).scalar_subquery()


_CALLER = CONSUMER_BY_KEY_ID.subquery("caller")
_HOLDER = HELD_LICENSES.subquery("held")
# One statement, one round trip: the caller's consumer row joined to each of the holder's
# licenses (one row with empty license columns if the holder has none; no row if the key id is
# unknown), and the holder's consents for that consumer as JSON (usually none). Plain columns
# rather than JSON for the licenses: measured here, building and parsing JSON of the
# credentials cost the server and PostgreSQL about 150 µs a lookup.
CALLER_AND_HOLDER = sa.select(
    _CALLER, _HOLDER, _json_rows(consents_for_holder(_CALLER.c.name)).label("consents")
).select_from(_CALLER.outerjoin(_HOLDER, sa.true()))
_CALLER_NAMES = tuple(column.name for column in _CALLER.c)
_CALLER_WIDTH = len(_CALLER_NAMES)
_HELD_WIDTH = len(_HOLDER.c)
_CONSUMER = _Statement(CONSUMER_BY_KEY_ID)
_CALLER_AND_HOLDER = _Statement(CALLER_AND_HOLDER)


def _consents_from_json(rows: list[dict[str, Any]] | None) -> list[Mapping[str, Any]]:
    return [
        {**row, "expires_at": dt.datetime.fromisoformat(row["expires_at"])} for row in rows or ()
    ]


async def _json_codec(connection: asyncpg.Connection) -> None:
    # JSON columns (consumers.scopes, consents.license_types) as Python values, as SQLAlchemy
    # gives them.
    await connection.set_type_codec(
        "json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
    )


def _caller_and_holder(
    rows: Sequence[Any], holder_key: str
) -> tuple[Mapping[str, Any] | None, Prefetched]:
    """The consumer row and the holder's Prefetched from CALLER_AND_HOLDER's rows."""
    if not rows:
        return None, Prefetched(holder_key=holder_key, held=[], consent_rows=[])
    first = rows[0]
    consumer = dict(zip(_CALLER_NAMES, tuple(first)[:_CALLER_WIDTH], strict=True))
    held = [
        tuple(row)[_CALLER_WIDTH : _CALLER_WIDTH + _HELD_WIDTH]
        for row in rows
        if row[_CALLER_WIDTH] is not None
    ]
    # The join need not keep the subquery's order: put it back.
    held.sort(key=lambda values: (values[1], values[0]))
    return consumer, Prefetched(
        holder_key=holder_key,
        held=held_from_rows(held),
        consent_rows=_consents_from_json(first["consents"]),
    )


# The reads of several calls in one statement: CALLER_AND_HOLDER for each (key id, holder key)
# pair, the pair's number last. Each call costs the server a socket write that wakes
# PostgreSQL (measured here: most of a read's CPU in the server) and PostgreSQL a statement;
# calls that are ready in the same turn of the event loop share both.
_BATCHED_SQL = (
    "SELECT s.*, q.n FROM unnest($1::varchar[], $2::varchar[]) WITH ORDINALITY"
    " AS q(key_id, holder_key, n) CROSS JOIN LATERAL ("
    + _CALLER_AND_HOLDER.sql.replace("$1::VARCHAR", "q.key_id")
    .replace("$2::VARCHAR", "q.holder_key")
    .replace("$3::VARCHAR", "$3::varchar")
    + ") AS s ORDER BY q.n"
)
_Queued = tuple[str, str, "asyncio.Future[tuple[Mapping[str, Any] | None, Prefetched]]"]


class _Connections:
    """At most ``size`` asyncpg connections of one event loop, each lent to one call at a time.

    Not asyncpg's Pool: measured here, its acquire and release cost about 18 µs of CPU a call
    (a timeout scope, connection holders, an inactivity timer re-armed on every release); a
    call here costs a list pop and append. A connection that a call leaves in an unknown state
    (an error or a cancellation in the middle of a query) is closed, not lent again.
    """

    def __init__(self, dsn: str, size: int) -> None:
        self._dsn = dsn
        self._size = size
        self._idle: list[asyncpg.Connection] = []
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()
        self._open = 0
        self._closed = False

    async def _connect(self) -> asyncpg.Connection:
        connection = await asyncpg.connect(self._dsn)
        try:
            await _json_codec(connection)
        except BaseException:
            connection.terminate()
            raise
        return connection

    async def acquire(self) -> asyncpg.Connection:
        while True:
            if self._closed:
                raise asyncpg.InterfaceError("the reader is closed")
            if self._idle:
                return self._idle.pop()
            if self._open < self._size:
                self._open += 1
                try:
                    return await self._connect()
                except BaseException:
                    self._open -= 1
                    self._wake()
                    raise
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # pass the turn this waiter was given to the next one
                raise

    def release(self, connection: asyncpg.Connection, *, clean: bool) -> None:
        if clean and not self._closed and not connection.is_closed():
            self._idle.append(connection)
        else:
            self._open -= 1
            connection.terminate()
        self._wake()

    def _wake(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    @contextlib.asynccontextmanager
    async def lent(self) -> AsyncIterator[asyncpg.Connection]:
        connection = await self.acquire()
        clean = False
        try:
            yield connection
            clean = True
        finally:
            self.release(connection, clean=clean)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            self._open -= 1
            await connection.close()
        self._wake()


class PostgresReader:
    """Reads with asyncpg on the event loop, from a few connections per worker.

    asyncpg rather than psycopg's async mode: measured here, a lookup's reads cost about
    110 µs less CPU with it (docs/api.md). Statements are prepared once per connection
    (asyncpg's statement cache). Connections open on first use in the running event loop
    (uvicorn's, one per worker); a test client that runs each request in a new loop gets new
    connections for it, and the old ones close when they are collected.
    """

    def __init__(self, dsn: str, *, max_size: int = 16) -> None:
        self._dsn = dsn
        self._max_size = max_size
        self._pool: _Connections | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queued: list[_Queued] = []  # reads waiting for this turn of the loop to end
        self._reading: set[asyncio.Task[None]] = set()

    @classmethod
    def for_engine(cls, engine: sa.Engine, *, max_size: int = 16) -> PostgresReader:
        """A reader of the database behind a SQLAlchemy PostgreSQL engine."""
        url = engine.url.set(drivername="postgresql")
        return cls(url.render_as_string(hide_password=False), max_size=max_size)

    def _connections(self) -> _Connections:
        """This event loop's connections (and read queue): new ones in a new loop."""
        loop = asyncio.get_running_loop()
        if self._pool is None or self._loop is not loop:
            self._loop = loop
            self._pool = _Connections(self._dsn, self._max_size)
            self._queued = []
        return self._pool

    async def consumer(self, key_id: str) -> Mapping[str, Any] | None:
        async with _reachable(), self._connections().lent() as conn:
            row = await conn.fetchrow(_CONSUMER.sql, *_CONSUMER.args(key_id=key_id))
        return dict(row.items()) if row is not None else None

    async def caller_and_holder(
        self, key_id: str, holder_key: str
    ) -> tuple[Mapping[str, Any] | None, Prefetched]:
        self._connections()  # in this loop
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[tuple[Mapping[str, Any] | None, Prefetched]]
        answer = loop.create_future()
        self._queued.append((key_id, holder_key, answer))
        if len(self._queued) == 1:
            # Read once every call that is ready to run in this turn of the loop has queued.
            loop.call_soon(self._flush)
        return await answer

    def _flush(self) -> None:
        batch, self._queued = self._queued, []
        task = asyncio.get_running_loop().create_task(self._read(batch))
        self._reading.add(task)
        task.add_done_callback(self._reading.discard)

    async def _read(self, batch: list[_Queued]) -> None:
        try:
            async with _reachable(), self._connections().lent() as conn:
                if len(batch) == 1:
                    key_id, holder_key, _ = batch[0]
                    rows = await conn.fetch(
                        _CALLER_AND_HOLDER.sql,
                        *_CALLER_AND_HOLDER.args(key_id=key_id, holder_key=holder_key),
                    )
                    grouped = {1: rows}
                else:
                    rows = await conn.fetch(
                        _BATCHED_SQL,
                        [key_id for key_id, _, _ in batch],
                        [holder_key for _, holder_key, _ in batch],
                        _CALLER_AND_HOLDER.args(key_id=None, holder_key=None)[2],
                    )
                    grouped = {}
                    for row in rows:
                        grouped.setdefault(row[-1], []).append(row)
        except BaseException as exc:
            for _, _, answer in batch:
                if not answer.done():
                    answer.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for number, (_, holder_key, answer) in enumerate(batch, start=1):
            if answer.done():
                continue  # its call was cancelled
            try:
                answer.set_result(_caller_and_holder(grouped.get(number, []), holder_key))
            except Exception as exc:  # one call's rows that do not parse fail that call only
                answer.set_exception(exc)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None and self._loop is asyncio.get_running_loop():
            await pool.close()
