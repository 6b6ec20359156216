"""The quarantine round trip: export rejected rows for the department, replay fixed ones.

**Export** writes a source's quarantined rows as CSV with ID numbers decrypted, so the department
can correct them (an authorised engineer's action; the file is created mode 0600).

**Replay** takes corrected rows (a file in the export's layout, or one row with field overrides)
through the same path an ingest batch takes: the fields are typed as the source mapping would
(``bad_date:<field>`` ...), the source's gate judges them, good rows become lake rows and are
merged in one commit. That commit carries its own application transaction,
``replay:<source>`` with its own sequence, so the source's watermark (``<source>``'s
transaction and state) is untouched. Rows that made it are marked ``resolved`` in the
quarantine (by ``replay:<source>:<seq>``); rows that still fail stay open with the new reasons.
The normal issuance step then issues their licenses from the lake's change feed.

A crash between the lake commit and the resolution leaves the rows open; replaying them again
merges identical rows (no change) and resolves them.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import sqlalchemy as sa

from catalog_schemas.errors import FatalError
from catalog_schemas.model import FieldSpec, LicenseType, Source
from connectors import conversion
from exchange.hub import Hub
from exchange.lake import LakeTable
from exchange.pipeline import to_lake_rows
from quality import Gate
from quality.model import OPEN, QuarantineRow
from quality.quarantine import (
    EXPORT_ID,
    HELD_EXPORT_ID,
    decrypt_held_row,
    decrypt_row,
    find_row,
    get_held,
    get_row,
    mark_resolved,
    note_replay_failure,
    with_unconverted,
    write_export,
)
from quality.report import REPLAY, RunRecorder, report_root

logger = logging.getLogger(__name__)

#: Columns of an export that are not license fields.
_EXPORT_META = ("source", "row_ref", "reasons")


class ReplayError(FatalError):
    """A replay file or request does not fit the quarantine (wrong ids, columns, source)."""

    code = "replay_invalid"
    http_status = 422


def replay_app_id(source: str) -> str:
    """The lake application id of a source's replays (the source's own id is its watermark)."""
    return f"replay:{source}"


@dataclass
class ReplayReport:
    """What one replay did: ``rows_in == rows_loaded + rows_rejected + len(skipped)``."""

    source: str
    batch_id: str | None = None
    rows_in: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    resolved: list[int] = field(default_factory=list)
    failed: dict[int, list[str]] = field(default_factory=dict)
    skipped: list[int] = field(default_factory=list)
    lake_version: int | None = None
    quality_run: int | None = None
    report: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The report as plain data (ids, counts and reason codes only)."""
        return asdict(self)


# --- export -----------------------------------------------------------------------------------


def export_quarantine(
    hub: Hub,
    path: Path,
    *,
    source: str,
    status: str | None = OPEN,
    row_ids: Sequence[int] = (),
    overwrite: bool = False,
) -> int:
    """Write ``source``'s quarantined rows (open ones by default) as CSV, IDs decrypted."""
    src = hub.catalog.source(source)
    license_type = hub.catalog.license_type(src.license_type)
    with hub.sessions() as session:
        query = (
            sa.select(QuarantineRow)
            .where(QuarantineRow.source == source)
            .order_by(QuarantineRow.id)
        )
        if status is not None:
            query = query.where(QuarantineRow.status == status)
        if row_ids:
            query = query.where(QuarantineRow.id.in_(list(row_ids)))
        rows = session.scalars(query).all()
        missing = sorted(set(row_ids) - {r.id for r in rows})
        if missing:
            raise ReplayError(
                f"source {source}: no quarantined rows {missing}"
                + (f" in status {status}" if status else "")
            )
        records = [
            {
                "id": r.id,
                "source": r.source,
                "row_ref": r.row_ref,
                "reasons": r.reasons,
                "values": decrypt_row(r, cipher=hub.cipher),
            }
            for r in rows
        ]
    return write_export(path, license_type=license_type, records=records, overwrite=overwrite)


def export_held(hub: Hub, path: Path, *, held_id: int, overwrite: bool = False) -> int:
    """Write a held batch's rejected rows as CSV, IDs decrypted (for inspection, not replay)."""
    with hub.sessions() as session:
        held, rows = get_held(session=session, held_id=held_id)
        license_type = hub.catalog.license_type(held.license_type)
        records = [
            {
                "id": r.id,
                "source": held.source,
                "row_ref": r.row_ref,
                "reasons": r.reasons,
                "values": decrypt_held_row(r, cipher=hub.cipher),
            }
            for r in rows
        ]
    return write_export(
        path,
        license_type=license_type,
        records=records,
        id_column=HELD_EXPORT_ID,
        overwrite=overwrite,
    )


# --- reading a replay file --------------------------------------------------------------------


def read_replay_file(
    path: Path, *, encoding: str | None = None
) -> dict[str, list[tuple[int, dict[str, str | None]]]]:
    """Rows of a corrected export, per source: ``(quarantine id, {field: text or None})``.

    The file must keep the export's first column (``quarantine_id``) and ``source``; blank cells
    are null. Read as UTF-8 (with or without BOM), else GB18030, which a spreadsheet saving on a
    Chinese Windows produces.
    """
    text = _read_text(path, encoding)
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if not header or header[0] != EXPORT_ID or "source" not in header:
        if header and header[0] == HELD_EXPORT_ID:
            raise ReplayError(
                f"{path} is an export of a held batch; held rows are not replayed (the source "
                "is read again from the same watermark once the department fixes it)"
            )
        raise ReplayError(
            f"{path}: the first column must be {EXPORT_ID} and a source column must be present "
            "(keep the layout `onehub quarantine export` wrote)"
        )
    if len(set(header)) != len(header):
        raise ReplayError(f"{path}: repeated column names")
    fields = [h for h in header[1:] if h not in _EXPORT_META]
    out: dict[str, list[tuple[int, dict[str, str | None]]]] = {}
    seen: set[int] = set()
    for line_no, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise ReplayError(f"{path}:{line_no}: {len(cells)} cells, the header has {len(header)}")
        row = dict(zip(header, cells, strict=True))
        try:
            row_id = int(row[EXPORT_ID])
        except ValueError:
            raise ReplayError(f"{path}:{line_no}: {EXPORT_ID} is not a number") from None
        if row_id in seen:
            raise ReplayError(f"{path}:{line_no}: {EXPORT_ID} {row_id} appears twice")
        seen.add(row_id)
        values = {f: (row[f] if row[f].strip() else None) for f in fields}
        out.setdefault(row["source"].strip(), []).append((row_id, values))
    return out


def _read_text(path: Path, encoding: str | None) -> str:
    data = path.read_bytes()
    for candidate in [encoding] if encoding else ["utf-8-sig", "gb18030"]:
        try:
            return data.decode(candidate)
        except UnicodeDecodeError:
            continue
    raise ReplayError(f"{path}: not {encoding or 'UTF-8 or GB18030'} text")


# --- replay -----------------------------------------------------------------------------------


def replay_file(hub: Hub, path: Path, *, encoding: str | None = None) -> list[ReplayReport]:
    """Replay every row of a corrected export (one lake commit per source)."""
    grouped = read_replay_file(path, encoding=encoding)
    return [replay_rows(hub, source, rows) for source, rows in sorted(grouped.items())]


def replay_one(
    hub: Hub,
    *,
    row_id: int | None = None,
    source: str | None = None,
    row_ref: str | None = None,
    overrides: Mapping[str, str | None] | None = None,
) -> ReplayReport:
    """Replay one quarantined row (by id, or by source and row ref) with fields overridden."""
    with hub.sessions() as session:
        if row_id is not None:
            row = get_row(session=session, row_id=row_id)
        elif source is not None and row_ref is not None:
            row = find_row(session=session, source=source, row_ref=row_ref)
        else:
            raise ReplayError("name the row: its id, or its source and row ref")
        # a value the mapping could not convert is replayed as the department sent it
        values: dict[str, Any] = with_unconverted(decrypt_row(row, cipher=hub.cipher))
        target = (row.id, row.source)
    license_type = hub.catalog.license_type(hub.catalog.source(target[1]).license_type)
    names = {f.name for f in license_type.fields}
    unknown = sorted(set(overrides or {}) - names)
    if unknown:
        raise ReplayError(
            f"{license_type.code} has no fields {unknown} (fields: {', '.join(sorted(names))})"
        )
    values.update(overrides or {})
    return replay_rows(hub, target[1], [(target[0], values)])


def replay_rows(
    hub: Hub, source_name: str, rows: Sequence[tuple[int, Mapping[str, Any]]]
) -> ReplayReport:
    """Gate corrected quarantined rows of one source and merge the good ones into the lake."""
    source = hub.catalog.source(source_name)
    license_type = hub.catalog.license_type(source.license_type)
    report = ReplayReport(source=source.name, rows_in=len(rows))
    ids = [row_id for row_id, _ in rows]
    if len(set(ids)) != len(ids):
        raise ReplayError("a quarantined row is named twice")
    with hub.sessions() as session:
        stored = {
            r.id: r
            for r in session.scalars(sa.select(QuarantineRow).where(QuarantineRow.id.in_(ids)))
        }
        refs = {i: r.row_ref for i, r in stored.items()}
        states = {i: (r.source, r.status) for i, r in stored.items()}
    missing = sorted(set(ids) - set(stored))
    if missing:
        raise ReplayError(f"no quarantined rows {missing}")
    foreign = sorted(i for i in ids if states[i][0] != source.name)
    if foreign:
        raise ReplayError(f"quarantined rows {foreign} are not rows of source {source.name}")
    report.skipped = [i for i in ids if states[i][1] != OPEN]
    todo = [(i, values) for i, values in rows if states[i][1] == OPEN]
    if report.skipped:
        logger.info("replay %s: rows %s are no longer open; skipped", source.name, report.skipped)
    if not todo:
        return report

    mapped = build_mapped(todo, license_type=license_type, source=source)
    gate = Gate(license_type, today=hub.now().date(), source=source)
    result = gate.check(mapped)
    lake = LakeTable(hub.lake_uri, license_type)
    lake.ensure()
    app_id = replay_app_id(source.name)
    seq = lake.committed_seq(app_id) + 1
    batch_id = f"{app_id}:{seq}"
    now = hub.now()
    recorder = RunRecorder(gate, source=source.name, kind=REPLAY, root=report_root(hub.lake_uri))
    failed = {
        _row_id(ref): [str(r) for r in why or []]
        for ref, why in zip(
            result.rejected.column("_row_ref").to_pylist(),
            result.rejected.column("_reasons").to_pylist(),
            strict=True,
        )
    }
    with hub.sessions.begin() as session:
        report.quality_run = recorder.record(session=session, batch_seq=seq, result=result, now=now)
        for row_id, why in failed.items():
            note_replay_failure(session=session, row_id=row_id, reasons=why, now=now)
    report.failed = failed
    report.rows_rejected = len(failed)
    good = result.good
    good_ids = [_row_id(ref) for ref in good.column("_row_ref").to_pylist()]
    if good.num_rows:
        # the lake keeps the row's reference in its source, not the gate's per-replay one
        good = good.set_column(
            good.schema.get_field_index("_row_ref"),
            "_row_ref",
            pa.array([refs[i] for i in good_ids], pa.string()),
        )
        lake_rows = to_lake_rows(
            good,
            hub=hub,
            license_type=license_type,
            source=source,
            batch_id=batch_id,
            ingested_at=now,
        )
        commit = lake.commit_batch(
            lake_rows, source=app_id, seq=seq, state={"quarantine_ids": sorted(good_ids)}
        )
        report.lake_version = commit.version
        report.batch_id = batch_id
        with hub.sessions.begin() as session:
            report.resolved = mark_resolved(session=session, row_ids=good_ids, by=batch_id, now=now)
    report.rows_loaded = good.num_rows
    report.report = recorder.write()
    logger.info(
        "replay %s as %s: %d rows in, %d loaded, %d still failing, %d skipped",
        source.name,
        batch_id,
        report.rows_in,
        report.rows_loaded,
        report.rows_rejected,
        len(report.skipped),
    )
    return report


def build_mapped(
    rows: Sequence[tuple[int, Mapping[str, Any]]], *, license_type: LicenseType, source: Source
) -> pa.Table:
    """The mapped batch of corrected rows, typed as the source mapping types its fields.

    Columns: the license fields any row gives (a field no row names stays absent, as in an
    ingest batch that does not map it), ``_row_ref`` (``q<quarantine id>``: one source row can
    be quarantined twice) and ``_errors`` (``bad_date:<field>`` ... for values that do not parse).
    """
    names = {f.name for f in license_type.fields}
    given = {name for _, values in rows for name in values}
    unknown = sorted(given - names)
    if unknown:
        raise ReplayError(
            f"source {source.name}: {license_type.code} has no fields {unknown} "
            f"(fields: {', '.join(sorted(names))})"
        )
    columns: dict[str, pa.Array] = {}
    failures: list[tuple[str, np.ndarray]] = []
    for spec in license_type.fields:
        if spec.name not in given:
            continue
        text = pa.array([_text(values.get(spec.name)) for _, values in rows], pa.string())
        columns[spec.name], field_failures = _typed(text, spec)
        failures += field_failures
    columns["_row_ref"] = pa.array([f"q{row_id}" for row_id, _ in rows], pa.string())
    columns["_errors"] = _error_lists(failures, len(rows))
    return pa.table(columns)


def _typed(text: pa.Array, spec: FieldSpec) -> tuple[pa.Array, list[tuple[str, np.ndarray]]]:
    values = conversion.blank_to_null(conversion.trim(text))
    if spec.type == "code":
        kept, bad = conversion.check_codes(values, spec.codes or {})
        return kept, [(f"unknown_code:{spec.name}", bad)]
    if spec.type == "date":
        dates, bad = conversion.parse_date(values)
        return dates, [(f"bad_date:{spec.name}", bad)]
    if spec.type == "integer":
        numbers, bad = conversion.parse_integer(values)
        return numbers, [(f"bad_integer:{spec.name}", bad)]
    if spec.type == "decimal":
        decimals, bad = conversion.parse_decimal(values)
        return decimals, [(f"bad_decimal:{spec.name}", bad)]
    return values, []


def _error_lists(failures: Iterable[tuple[str, np.ndarray]], n: int) -> pa.Array:
    per_row: list[list[str]] = [[] for _ in range(n)]
    for reason, mask in failures:
        for i in np.flatnonzero(mask).tolist():
            per_row[i].append(reason)
    return pa.array(per_row, pa.list_(pa.string()))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _row_id(ref: Any) -> int:
    return int(str(ref)[1:])
