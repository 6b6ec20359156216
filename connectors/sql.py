"""Incremental reads from any SQLAlchemy database, keyset-paged on (watermark, primary key).

A run works in two phases, both bounded in memory by ``batch_size``:

1. **The window.** ``max(watermark)`` is read once when the run starts and fixes the window's
   end, so rows written during the run wait for the next one. Pages are read with::

       WHERE (wm > :wm OR (wm = :wm AND pk > :pk)) AND wm <= :end ORDER BY wm, pk LIMIT :n

   The start is inclusive of the last watermark and deduplicated on the primary key, so rows
   that share one timestamp across a page edge are neither lost nor read twice. Each page is its
   own short query; no transaction stays open on the department's database while the pipeline
   works on a batch.
2. **Rows without a watermark.** A NULL watermark sorts nowhere in the window, yet skipping the
   row would lose it silently. These rows are read after the window, keyed by primary key, and
   each is yielded once: the state keeps ``null_pks``, the primary keys of NULL-watermark rows
   already yielded, pruned at every run to the rows whose watermark is still NULL. A row that is
   later given a watermark comes back through the window; one that loses it again is yielded
   again. So none is lost and none loops; the state grows only with rows that are broken now,
   and the pipeline quarantines them (the mapping marks them ``missing_watermark:<column>``).

State: ``{"watermark": <ISO string or number>, "pk": <last pk>, "null_pks": [<pk text>, ...]}``.
Watermarks are kept in the database's own type between pages and written to the state as ISO
strings (datetimes, dates), strings (Decimal) or numbers; on resume the state's value is read
back into the type of the run's ``max(watermark)``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.types import NullType

from catalog_schemas.errors import FatalError, RetriableError
from catalog_schemas.model import Source, SqlConnector
from connectors.base import ROW_REF, Backlog, ReadBatch
from connectors.cell import cell_text, column_text

logger = logging.getLogger(__name__)

_FETCH = 10_000  # rows pulled from the driver, and converted to Arrow, at a time


class SqlSourceConnector:
    """Reads one SQL source incrementally; see the module docstring for the paging and state."""

    def __init__(self, source: Source, *, location: str | sa.Engine) -> None:
        if not isinstance(source.connector, SqlConnector):
            raise FatalError(f"source {source.name!r} is not a SQL source", code="connector_kind")
        self._source = source
        self._spec: SqlConnector = source.connector
        self._location = location

    def read(self, state: dict[str, Any] | None) -> Iterator[ReadBatch]:
        """Yield the rows changed after ``state``, then rows without a watermark not yet yielded."""
        engine, owned = self._engine()
        try:
            yield from self._read(engine, state or {})
        except sa.exc.SQLAlchemyError as exc:
            raise _classify(self._source.name, exc) from exc
        finally:
            if owned:
                engine.dispose()

    def finish(self, state: dict[str, Any]) -> None:
        """Nothing to tidy up: the state alone records progress."""

    def backlog(self, state: dict[str, Any] | None) -> Backlog:
        """The source's newest watermark, how far ``state`` is behind it, and rows not yet read."""
        state = state or {}
        engine, owned = self._engine()
        try:
            with engine.connect() as conn:
                relation = self._relation(conn)
                wm = relation.clause.c[self._spec.watermark]
                pk = relation.clause.c[self._spec.primary_key]
                newest = conn.execute(
                    sa.select(sa.func.max(wm)).select_from(relation.clause)
                ).scalar()
                count = sa.select(sa.func.count()).select_from(relation.clause)
                if "watermark" in state and newest is not None:
                    cw = _decode_watermark(state["watermark"], like=newest)
                    cp = _bind(state["pk"])
                    count = count.where(sa.or_(wm > _bind(cw), sa.and_(wm == _bind(cw), pk > cp)))
                else:
                    cw = None
                    count = count.where(wm.is_not(None))
                waiting = int(conn.execute(count).scalar() or 0)
        except sa.exc.SQLAlchemyError as exc:
            raise _classify(self._source.name, exc) from exc
        finally:
            if owned:
                engine.dispose()
        return Backlog(
            source_watermark=None
            if newest is None
            else _encode_watermark(newest, self._source.name),
            lag=_distance(newest, cw),
            waiting=waiting,
        )

    def _engine(self) -> tuple[sa.Engine, bool]:
        if isinstance(self._location, sa.Engine):
            return self._location, False
        url = sa.make_url(self._location)
        database = url.database or ""
        on_disk = database not in ("", ":memory:") and not database.startswith("file:")
        if url.get_backend_name() == "sqlite" and on_disk and not Path(database).is_file():
            # Connecting would create an empty database file in the department's place.
            raise FatalError(
                f"source {self._source.name!r}: SQLite database {database} does not exist",
                code="source_database_missing",
            )
        # hide_parameters: a failing statement's message would otherwise carry row values
        # (primary keys may be ID numbers) into logs.
        return sa.create_engine(url, hide_parameters=True), True

    def _read(self, engine: sa.Engine, state: dict[str, Any]) -> Iterator[ReadBatch]:
        spec = self._spec
        with engine.connect() as conn:
            relation = self._relation(conn)
            wm, pk = relation.clause.c[spec.watermark], relation.clause.c[spec.primary_key]
            end = conn.execute(sa.select(sa.func.max(wm)).select_from(relation.clause)).scalar()
            null_now = [
                _pk_text(row[0])
                for row in conn.execution_options(stream_results=True).execute(
                    sa.select(pk).where(wm.is_(None)).order_by(pk)
                )
            ]
        seen = set(state.get("null_pks") or [])
        null_pks = [p for p in null_now if p in seen]  # pruned: rows fixed since are dropped
        new_null = {p for p in null_now if p not in seen}

        cursor: tuple[Any, Any] | None = None
        watermark_out, pk_out = state.get("watermark"), state.get("pk")
        if "watermark" in state and end is not None:
            cursor = (_decode_watermark(state["watermark"], like=end), state["pk"])
        if end is not None:
            while True:
                stmt = sa.select(*relation.clause.c).where(wm <= _bind(end))
                if cursor is not None:
                    cw, cp = _bind(cursor[0]), _bind(cursor[1])
                    stmt = stmt.where(sa.or_(wm > cw, sa.and_(wm == cw, pk > cp)))
                stmt = stmt.order_by(wm, pk).limit(spec.batch_size)
                page = self._page(engine, relation, stmt)
                if page.last is None:
                    break
                cursor = (page.last[spec.watermark], page.last[spec.primary_key])
                watermark_out = _encode_watermark(cursor[0], self._source.name)
                pk_out = _pk_json(cursor[1])
                yield ReadBatch(page.batch, _state(watermark_out, pk_out, null_pks))
                if page.rows_read < spec.batch_size:
                    break

        if new_null:
            logger.warning(
                "source %s: %d rows have no %s value; yielding them for quarantine",
                self._source.name,
                len(new_null),
                spec.watermark,
                extra={"source": self._source.name},
            )
            yield from self._null_rows(engine, relation, new_null, null_pks, watermark_out, pk_out)

    def _null_rows(
        self,
        engine: sa.Engine,
        relation: _Relation,
        new_null: set[str],
        null_pks: list[str],
        watermark_out: Any,
        pk_out: Any,
    ) -> Iterator[ReadBatch]:
        spec = self._spec
        wm, pk = relation.clause.c[spec.watermark], relation.clause.c[spec.primary_key]
        done = list(null_pks)
        after: Any = None
        while True:
            # Keyset-paged on the primary key; rows already yielded in an earlier run are
            # filtered out here, so a page may come back short or empty before the end.
            stmt = sa.select(*relation.clause.c).where(wm.is_(None))
            if after is not None:
                stmt = stmt.where(pk > _bind(after))
            stmt = stmt.order_by(pk).limit(spec.batch_size)
            page = self._page(engine, relation, stmt, keep=new_null)
            if page.last is None:
                break
            after = page.last[spec.primary_key]
            if page.pks:
                done.extend(page.pks)
                yield ReadBatch(page.batch, _state(watermark_out, pk_out, sorted(done)))
            if page.rows_read < spec.batch_size:
                break

    def _relation(self, conn: sa.Connection) -> _Relation:
        """The table or the custom query, untyped, so values arrive as the driver gives them."""
        spec = self._spec
        texts: list[Callable[[Any], str | None]] | None = None
        if spec.table is not None:
            schema, _, name = spec.table.rpartition(".")
            try:
                reflected = sa.inspect(conn).get_columns(name, schema=schema or None)
            except sa.exc.NoSuchTableError:
                raise FatalError(
                    f"source {self._source.name!r}: table {spec.table!r} does not exist",
                    code="source_table_missing",
                ) from None
            names = [c["name"] for c in reflected]
            relation: sa.FromClause = sa.table(
                name, *(sa.column(n) for n in names), schema=schema or None
            )
            if conn.dialect.name == "sqlite":
                # SQLite keeps a DATETIME as text ("2016-03-23 10:00:00.000000"); written the
                # ISO way, the batch reads as it does from MariaDB and PostgreSQL.
                stamps = {c["name"] for c in reflected if isinstance(c["type"], sa.DateTime)}
                texts = [_sqlite_datetime_text if n in stamps else cell_text for n in names]
        else:
            query = (spec.query or "").strip().rstrip(";")
            probe = conn.execute(sa.text(f"SELECT * FROM ({query}) AS _probe WHERE 1 = 0"))
            names = list(probe.keys())
            probe.close()
            relation = sa.text(query).columns(*(sa.column(n) for n in names)).subquery("_src")
        for role, column in (("primary_key", spec.primary_key), ("watermark", spec.watermark)):
            if column not in names:
                raise FatalError(
                    f"source {self._source.name!r}: {role} column {column!r} is not among the "
                    f"columns read ({', '.join(names)})",
                    code="source_column_missing",
                )
        if ROW_REF in names:
            raise FatalError(
                f"source {self._source.name!r}: a source column may not be called {ROW_REF!r}",
                code="source_column_reserved",
            )
        return _Relation(relation, tuple(texts or [cell_text] * len(names)))

    def _page(
        self,
        engine: sa.Engine,
        relation: _Relation,
        stmt: sa.Select[Any],
        keep: set[str] | None = None,
    ) -> _Page:
        """Run one page as strings; ``keep`` limits the rows kept to those primary keys."""
        names = [c.name for c in relation.clause.c]
        pk_index = names.index(self._spec.primary_key)
        chunks: list[list[pa.Array]] = []  # per fetch: one text array per column
        pks: list[str] = []
        last: Sequence[Any] | None = None
        count = 0
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True).execute(stmt)
            for part in result.partitions(_FETCH):
                count += len(part)
                last = part[-1]
                rows: list[Sequence[Any]] = []
                for row in part:
                    ref = _pk_text(row[pk_index])
                    if keep is None or ref in keep:
                        rows.append(row)
                        pks.append(ref)
                if rows:
                    # Converted per fetch, so only _FETCH driver rows are ever held as Python
                    # objects; column by column, most in one Arrow call (cell.column_text).
                    chunks.append(
                        [
                            column_text(values)
                            if text is cell_text
                            else pa.array([text(v) for v in values], pa.string())
                            for text, values in zip(
                                relation.texts, zip(*rows, strict=True), strict=True
                            )
                        ]
                    )
        arrays: list[pa.Array] = [
            pa.concat_arrays([chunk[i] for chunk in chunks])
            if chunks
            else pa.array([], pa.string())
            for i in range(len(names))
        ]
        arrays.append(pa.array([f"pk={p}" for p in pks], pa.string()))
        batch = pa.RecordBatch.from_arrays(arrays, names=[*names, ROW_REF])
        return _Page(
            batch=batch,
            last=None if last is None else dict(zip(names, last, strict=True)),
            rows_read=count,
            pks=pks,
        )


@dataclass(frozen=True)
class _Relation:
    clause: sa.FromClause
    texts: tuple[Callable[[Any], str | None], ...]  # per column: value -> batch text


@dataclass(frozen=True)
class _Page:
    batch: pa.RecordBatch
    last: dict[str, Any] | None  # raw values of the last row read, kept or not
    rows_read: int
    pks: list[str]  # text of the kept rows' primary keys


def _sqlite_datetime_text(value: Any) -> str | None:
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value).isoformat()
        except ValueError:
            return value  # not a datetime after all: pass it on as stored
    return cell_text(value)


def _state(watermark: Any, pk: Any, null_pks: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"null_pks": list(null_pks)}
    if watermark is not None:
        out = {"watermark": watermark, "pk": pk, **out}
    return out


def _bind(value: Any) -> sa.BindParameter[Any]:
    # Untyped: the driver adapts the value as it came from the database, and no cast is rendered
    # (psycopg would otherwise get `::INTEGER` for a BIGINT key or `::VARCHAR` against a UUID).
    return sa.bindparam(None, value, type_=NullType())


def _pk_text(value: Any) -> str:
    return cell_text(value) or ""


def _pk_json(value: Any) -> Any:
    """The primary key as JSON: ints and strings as they are, anything else as its text."""
    if isinstance(value, int | str) and not isinstance(value, bool):
        return value
    return _pk_text(value)


def _encode_watermark(value: Any, source: str) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        return value
    raise FatalError(
        f"source {source!r}: watermark values of type {type(value).__name__} are not supported",
        code="watermark_type",
    )


def _decode_watermark(value: Any, *, like: Any) -> Any:
    """Read a state's watermark back into the type the database returns (that of ``like``)."""
    if isinstance(like, dt.datetime) and isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    if isinstance(like, dt.date) and isinstance(value, str):
        return dt.date.fromisoformat(value)
    if isinstance(like, decimal.Decimal):
        return decimal.Decimal(str(value))
    return value


def _distance(newest: Any, committed: Any) -> str | None:
    """``newest - committed`` for people: ``1 d 2 h 5 min`` (times) or the difference (numbers)."""
    if newest is None or committed is None:
        return None
    if isinstance(newest, str) and isinstance(committed, str):
        try:  # SQLite keeps datetimes as text
            newest, committed = (
                dt.datetime.fromisoformat(newest),
                dt.datetime.fromisoformat(committed),
            )
        except ValueError:
            return None if newest == committed else "behind"
    if isinstance(newest, dt.datetime | dt.date) and type(newest) is type(committed):
        delta = newest - committed
        if isinstance(delta, dt.timedelta):
            seconds = int(delta.total_seconds())
            days, rest = divmod(max(seconds, 0), 86_400)
            hours, rest = divmod(rest, 3_600)
            minutes, secs = divmod(rest, 60)
            parts = [f"{days} d"] if days else []
            parts += [f"{hours} h"] if hours else []
            parts += [f"{minutes} min"] if minutes else []
            return " ".join(parts) or f"{secs} s"
    if isinstance(newest, int | float | decimal.Decimal) and not isinstance(newest, bool):
        return cell_text(newest - committed)
    return None if newest == committed else "behind"


def _classify(source: str, exc: sa.exc.SQLAlchemyError) -> Exception:
    """Retry what a later attempt may fix (connection trouble); stop on anything else."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).splitlines()[0] if str(orig) else type(orig).__name__
    lowered = text.lower()
    permanent = any(s in lowered for s in ("no such table", "no such column", "syntax error"))
    if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError) and not permanent:
        return RetriableError(
            f"source {source!r}: database unavailable: {text}", code="source_unavailable"
        )
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return RetriableError(
            f"source {source!r}: connection lost: {text}", code="source_unavailable"
        )
    return FatalError(f"source {source!r}: query failed: {text}", code="source_query_failed")
