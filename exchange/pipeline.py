"""Pipeline step: connectors → quality → lake (ingest). Issuance is in exchange.issuance.

Each Airflow task is one call into this module. Counts, versions and ids come back; no row
ever leaves these functions, so nothing personal reaches an XCom or a log.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from deltalake import DeltaTable, QueryBuilder

from catalog_schemas.errors import FatalError
from catalog_schemas.holder import HolderKind, holder_keys
from catalog_schemas.model import LicenseType, Source
from connectors import apply_mapping, open_connector
from connectors.mapping import DELETED
from exchange.hub import Hub
from exchange.lake import BUCKETS, ID_TYPES, LakeTable, lake_schema
from exchange.model import IngestRun
from quality import Gate, RunRecorder, hold_batch, record_rejected, report_root

logger = logging.getLogger(__name__)

Progress = Callable[[int, float], None]  # rows so far, seconds elapsed


class QualityThresholdError(FatalError):
    """A batch's quarantine rate passed the source's threshold: nothing of it is published."""

    code = "quality_threshold_exceeded"
    http_status = 422


@dataclass
class IngestReport:
    """What one ingest run did; ``rows_in == rows_loaded + rows_quarantined`` always."""

    source: str
    batches: int = 0
    batches_skipped: int = 0
    rows_in: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_skipped: int = 0
    rows_deleted: int = 0
    lake_version: int | None = None
    seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _holder_kind_of(spec_type: str) -> HolderKind | None:
    return {"resident_id": "natural_person", "credit_code": "legal_person"}.get(spec_type)  # type: ignore[return-value]


def _kinds_for(license_type: LicenseType, id_field: str, good: pa.Table) -> pa.Array:
    """The holder kind of each row for ``id_field`` (fixed, or read from the kind field)."""
    spec = license_type.field(id_field)
    fixed = _holder_kind_of(spec.type)
    if fixed is not None:
        return pa.array([fixed] * good.num_rows, pa.string())
    holder = next(h for h in license_type.holders if h.id_field == id_field)
    assert holder.kind_field is not None  # guaranteed by the catalog model
    return good.column(holder.kind_field).combine_chunks()


def to_lake_rows(
    good: pa.Table,
    *,
    hub: Hub,
    license_type: LicenseType,
    source: Source,
    batch_id: str,
    ingested_at: dt.datetime,
) -> pa.Table:
    """Turn gate-approved rows into lake rows: ID numbers become holder keys plus ciphertext."""
    n = good.num_rows
    schema = lake_schema(license_type)
    columns: dict[str, pa.Array | pa.ChunkedArray] = {}
    hash_parts: list[pa.Array | pa.ChunkedArray] = []
    for spec in license_type.fields:
        if spec.type in ID_TYPES:
            canonical = (
                good.column(spec.name).combine_chunks()
                if spec.name in good.column_names
                else pa.nulls(n, pa.string())
            )
            kinds = _kinds_for(license_type, spec.name, good)
            keys = pa.nulls(n, pa.string())
            for kind in ("natural_person", "legal_person"):
                mask = pc.fill_null(pc.equal(kinds, kind), False)
                if not pc.any(mask).as_py():
                    continue
                part = holder_keys(hub.hub_key, kind, pc.filter(canonical, mask))
                keys = pc.replace_with_mask(keys, mask, part)
            enc = hub.cipher.encrypt_many(
                canonical.to_pylist(), [k or "" for k in keys.to_pylist()]
            )
            columns[f"{spec.name}__key"] = keys
            columns[f"{spec.name}__enc"] = pa.array(enc, pa.string())
            hash_parts.append(keys)
        else:
            col = good.column(spec.name) if spec.name in good.column_names else None
            columns[spec.name] = (
                col if col is not None else pa.nulls(n, schema.field(spec.name).type)
            )
            hash_parts.append(pc.cast(columns[spec.name], pa.string()))
    license_no = pc.cast(good.column(license_type.license_no_field), pa.string())
    record_key = pc.binary_join_element_wise(
        f"{license_type.code}:{license_type.issuer}", license_no, ":"
    )
    primary = columns[f"{license_type.holders[0].id_field}__key"]
    joined = pc.binary_join_element_wise(*[pc.fill_null(p, "\x00") for p in hash_parts], "\x1f")
    row_hash = [hashlib.sha256(v.encode("utf-8")).hexdigest() for v in joined.to_pylist()]
    bucket = [int(k[:4], 16) % BUCKETS if k else 0 for k in pa.chunked_array([primary]).to_pylist()]
    columns.update(
        record_key=record_key,
        holder_key=primary,
        holder_bucket=pa.array(bucket, pa.int32()),
        _deleted=pa.array([False] * n),
        _source=pa.array([source.name] * n, pa.string()),
        _batch_id=pa.array([batch_id] * n, pa.string()),
        _row_ref=good.column("_row_ref"),
        _ingested_at=pa.array([ingested_at] * n, pa.timestamp("us", tz="UTC")),
        _row_hash=pa.array(row_hash, pa.string()),
    )
    return pa.table({name: columns[name] for name in schema.names}).cast(schema)


def split_deletions(mapped: pa.Table, license_type: LicenseType) -> tuple[pa.Table, pa.Table]:
    """Split a mapped batch into rows to gate and soft-deleted rows (those with a license number).

    A deleted row is not gated: it only has to name the record it deletes. One without a
    license number stays with the rows to gate, where the not-null check quarantines it.
    """
    if DELETED not in mapped.column_names:
        return mapped, mapped.slice(0, 0)
    deleted = pc.and_(
        mapped.column(DELETED), pc.is_valid(mapped.column(license_type.license_no_field))
    )
    return mapped.filter(pc.invert(deleted)).drop_columns([DELETED]), mapped.filter(deleted)


def to_lake_deletions(
    deleted: pa.Table,
    *,
    lake: LakeTable,
    live_keys: pa.Array | pa.ChunkedArray,
    source: Source,
    batch_id: str,
    ingested_at: dt.datetime,
) -> pa.Table:
    """Lake rows that mark the records ``deleted`` names as deleted (``_deleted`` = true).

    Each is the record's current lake row, so it keeps its record_key, holder keys and fields;
    only ``_deleted`` and the batch columns change, and ``_row_hash`` becomes a hash of the old
    one, so that re-reading the same deletion changes nothing and a later live copy of the
    record (same content as before) updates it back. A record the lake never held, already
    deleted, or also delivered live in the same batch (the live row wins) gives no row.
    """
    license_type = lake.license_type
    license_no = pc.cast(deleted.column(license_type.license_no_field), pa.string())
    keys = pc.binary_join_element_wise(
        f"{license_type.code}:{license_type.issuer}", license_no, ":"
    )
    wanted = pc.filter(keys, pc.invert(pc.is_in(keys, value_set=pa.array(live_keys, pa.string()))))
    if len(wanted) == 0 or not lake.exists():
        return lake.schema.empty_table()
    refs = dict(zip(keys.to_pylist(), deleted.column("_row_ref").to_pylist(), strict=True))
    current = _lake_rows(lake, pc.unique(wanted).to_pylist())
    current = current.filter(pc.invert(current.column("_deleted")))
    n = current.num_rows
    hashes = [
        hashlib.sha256(f"deleted:{h}".encode()).hexdigest()
        for h in current.column("_row_hash").to_pylist()
    ]
    replace = {
        "_deleted": pa.array([True] * n),
        "_source": pa.array([source.name] * n, pa.string()),
        "_batch_id": pa.array([batch_id] * n, pa.string()),
        "_row_ref": pa.array([refs[k] for k in current.column("record_key").to_pylist()]),
        "_ingested_at": pa.array([ingested_at] * n, pa.timestamp("us", tz="UTC")),
        "_row_hash": pa.array(hashes, pa.string()),
    }
    for name, values in replace.items():
        current = current.set_column(current.schema.get_field_index(name), name, values)
    return current.cast(lake.schema)


def _lake_rows(lake: LakeTable, record_keys: list[str]) -> pa.Table:
    """The lake's current rows with these record keys."""
    # Through DataFusion: merged files hold string_view columns, which pyarrow's dataset filter
    # cannot compare with the plain strings of the other files.
    builder = QueryBuilder().register("lake", DeltaTable(lake.uri))
    parts = [lake.schema.empty_table()]
    for start in range(0, len(record_keys), 1000):
        literals = ", ".join(
            "'" + key.replace("'", "''") + "'" for key in record_keys[start : start + 1000]
        )
        found = pa.table(
            builder.execute(f"SELECT * FROM lake WHERE record_key IN ({literals})").read_all()
        )
        parts.append(found.select(lake.schema.names).cast(lake.schema))
    return pa.concat_tables(parts)


def _only_missing_watermark(rejected: pa.Table) -> int:
    if rejected.num_rows == 0 or "_reasons" not in rejected.column_names:
        return 0
    return sum(
        1
        for reasons in rejected.column("_reasons").to_pylist()
        if reasons and all(r.startswith("missing_watermark:") for r in reasons)
    )


def ingest_source(hub: Hub, source_name: str, *, progress: Progress | None = None) -> IngestReport:
    """Read one source incrementally, gate it, and merge it into the lake batch by batch."""
    source = hub.catalog.source(source_name)
    license_type = hub.catalog.license_type(source.license_type)
    lake = LakeTable(hub.lake_uri, license_type)
    lake.ensure()
    state = lake.committed_state(source.name)
    seq = lake.committed_seq(source.name)
    connector = open_connector(source, location=hub.resolve_connection(source.connector.connection))
    gate = Gate(license_type, today=hub.now().date(), source=source)
    # per-batch counts in the hub DB, Data Docs + JSON summary under the report root
    quality_run = RunRecorder(
        gate,
        source=source.name,
        root=report_root(hub.lake_uri),
        threshold=source.quarantine_threshold,
    )
    report = IngestReport(source=source.name)
    started = time.monotonic()
    with hub.sessions.begin() as session:
        run = IngestRun(source=source.name, started_at=hub.now(), status="running", state=state)
        session.add(run)
        session.flush()
        run_id = run.id
    last_state = state
    try:
        for read in connector.read(state):
            seq += 1
            batch_id = f"{source.name}:{seq}"
            mapped = apply_mapping(read.batch, source=source, license_type=license_type)
            mapped, deleted = split_deletions(mapped, license_type)
            result = gate.check(mapped)
            rows_in = mapped.num_rows + deleted.num_rows
            rejected = result.rejected.num_rows
            if rows_in != result.good.num_rows + deleted.num_rows + rejected:
                raise FatalError(f"gate lost rows in batch {batch_id}", code="rows_lost")
            # Rows rejected only for a missing watermark arrive in their own batch after the
            # window (see connectors.sql); they say nothing about a changed export, so they are
            # quarantined but do not count towards the threshold.
            counted = rejected - _only_missing_watermark(result.rejected)
            if rows_in and counted / rows_in > source.quarantine_threshold:
                worst = sorted(result.report.get("reasons", {}).items(), key=lambda kv: -kv[1])[:5]
                # Keep the rejected rows (encrypted) for inspection; the good ones come again
                # when the source is re-read from the same watermark.
                now = hub.now()
                with hub.sessions.begin() as session:
                    held = hold_batch(
                        session=session,
                        source=source.name,
                        batch_seq=seq,
                        license_type=license_type,
                        rejected=result.rejected,
                        rows_in=rows_in,
                        rows_counted=counted,
                        threshold=source.quarantine_threshold,
                        reasons=result.report.get("reasons", {}),
                        cipher=hub.cipher,
                        now=now,
                        source_batch=read.batch,
                        source_spec=source,
                    )
                    held.quality_run_id = quality_run.record(
                        session=session,
                        batch_seq=seq,
                        result=result,
                        now=now,
                        held=held.id,
                        ingest_run_id=run_id,
                    )
                    held_id = held.id
                docs = quality_run.write()
                raise QualityThresholdError(
                    f"batch {batch_id}: {rejected} of {rows_in} rows failed "
                    f"({rejected / rows_in:.1%} > threshold {source.quarantine_threshold:.1%}); "
                    f"nothing of it was published. Worst checks: "
                    + ", ".join(f"{name} ×{count}" for name, count in worst)
                    + f". Rejected rows held as held batch {held_id} "
                    f"(onehub quarantine held {held_id})"
                    + (f"; quality report {docs}" if docs else "")
                )
            now = hub.now()
            with hub.sessions.begin() as session:
                record_rejected(
                    session=session,
                    source=source.name,
                    batch_seq=seq,
                    license_type=license_type,
                    rejected=result.rejected,
                    cipher=hub.cipher,
                    now=now,
                    source_batch=read.batch,
                    source_spec=source,
                )
                quality_run.record(
                    session=session, batch_seq=seq, result=result, now=now, ingest_run_id=run_id
                )
            quality_run.write()
            rows = to_lake_rows(
                result.good,
                hub=hub,
                license_type=license_type,
                source=source,
                batch_id=batch_id,
                ingested_at=now,
            )
            if deleted.num_rows:
                rows = pa.concat_tables(
                    [
                        rows,
                        to_lake_deletions(
                            deleted,
                            lake=lake,
                            live_keys=rows.column("record_key"),
                            source=source,
                            batch_id=batch_id,
                            ingested_at=now,
                        ),
                    ]
                )
            commit = lake.commit_batch(rows, source=source.name, seq=seq, state=read.state)
            report.batches += 1
            report.batches_skipped += int(commit.skipped)
            report.rows_in += rows_in
            # A deletion counts as loaded: it is applied to the lake (or was a no-op there).
            report.rows_loaded += result.good.num_rows + deleted.num_rows
            report.rows_deleted += deleted.num_rows
            report.rows_quarantined += rejected
            for reason, count in result.report.get("reasons", {}).items():
                report.reasons[reason] = report.reasons.get(reason, 0) + int(count)
            report.lake_version = (
                commit.version if commit.version is not None else report.lake_version
            )
            last_state = read.state
            elapsed = time.monotonic() - started
            logger.info(
                "source %s batch %d: %d rows in, %d loaded, %d quarantined; "
                "%d rows in %.1f s (%.0f rows/s)",
                source.name,
                seq,
                rows_in,
                result.good.num_rows + deleted.num_rows,
                rejected,
                report.rows_in,
                elapsed,
                report.rows_in / elapsed if elapsed else 0.0,
            )
            if progress is not None:
                progress(report.rows_in, elapsed)
        if last_state is not None:
            connector.finish(last_state)
    except BaseException as exc:
        _finish_run(
            hub,
            run_id,
            report,
            status="failed",
            state=last_state,
            error=f"{type(exc).__name__}: {exc}",
        )
        raise
    report.seconds = time.monotonic() - started
    _finish_run(hub, run_id, report, status="success", state=last_state, error=None)
    return report


def _finish_run(
    hub: Hub,
    run_id: int,
    report: IngestReport,
    *,
    status: str,
    state: dict[str, Any] | None,
    error: str | None,
) -> None:
    with hub.sessions.begin() as session:
        session.execute(
            sa.update(IngestRun)
            .where(IngestRun.id == run_id)
            .values(
                finished_at=hub.now(),
                status=status,
                batches=report.batches,
                rows_in=report.rows_in,
                rows_loaded=report.rows_loaded,
                rows_quarantined=report.rows_quarantined,
                lake_version=report.lake_version,
                state=state,
                error=error,
            )
        )
