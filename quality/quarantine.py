"""The quarantine: rejected rows with their reasons, and held batches; ID numbers only encrypted.

Each rejected row is stored once per (source, batch_seq, row_ref), so recording a batch again
after a crash adds nothing. In ``row_json`` every ID field value (``LicenseType.id_fields``) is
``{"masked": "440106********123X", "enc": <FieldCipher token>}`` with associated data
``quarantine:<source>:<row_ref>`` (held rows: ``held:<held batch id>:<row_ref>``); other values
are plain JSON. A value the source mapping could not convert is null in the mapped row; given
the source batch, the quarantine also keeps what the department sent for it under
``row_json["_raw"]`` (``{"registration_date": "2020-02-30"}``), so the export shows the value to
fix. Only date, number and code fields fail a conversion, never an ID field.

A quarantined row is ``open`` until a replay puts its fixed version into the lake, which marks
it ``resolved`` (compare-and-swap, so two replays cannot both resolve it). The export for the
department decrypts ID numbers: it is an authorised engineer's action, and the file is created
readable by its owner only.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from catalog_schemas.cipher import FieldCipher
from catalog_schemas.errors import ConflictError, FatalError, NotFoundError
from catalog_schemas.holder import mask_id
from catalog_schemas.model import LicenseType, Source
from quality.model import (
    OPEN,
    RESOLVED,
    Base,
    HeldBatch,
    HeldRow,
    QuarantineRow,
    metadata,
)

logger = logging.getLogger(__name__)

__all__ = [
    "EXPORT_ID",
    "HELD_EXPORT_ID",
    "MIN_MASKED_LENGTH",
    "Base",
    "HeldBatch",
    "HeldRow",
    "QuarantineInputError",
    "QuarantineRow",
    "decrypt_held_row",
    "decrypt_row",
    "find_row",
    "get_held",
    "get_row",
    "hold_batch",
    "list_held",
    "list_rows",
    "mark_resolved",
    "mask_raw_id",
    "masked_row",
    "metadata",
    "note_replay_failure",
    "record_rejected",
    "row_aad",
    "unconverted_values",
    "with_unconverted",
    "write_export",
]

#: Shortest value shown as first 6 + last 4 characters; shorter ones become ``***``.
MIN_MASKED_LENGTH = 15

#: First column of an export of quarantined rows (a replay file must keep it).
EXPORT_ID = "quarantine_id"
#: First column of an export of a held batch's rows (not replayable: the source is re-read).
HELD_EXPORT_ID = "held_row_id"

#: Columns of a rejected batch that are stored in their own columns, not in ``row_json``.
_META_COLUMNS = frozenset({"_row_ref", "_errors", "_reasons"})
#: ``row_json`` key of the source's values that the mapping could not convert.
RAW_KEY = "_raw"
#: Reasons of the source mapping that null a value (``<prefix><field>``).
_CONVERSION_REASONS = ("bad_date:", "bad_integer:", "bad_decimal:", "unknown_code:")


class QuarantineInputError(FatalError):
    """The rejected table lacks a column the quarantine needs."""

    code = "quarantine_input_invalid"


def mask_raw_id(value: str) -> str:
    """Mask a raw (perhaps invalid) ID value: ``440106********123X``, or ``***`` if short."""
    # a rejected value can have any length; below 15 characters the kept 10 would reveal most of it
    if len(value) < MIN_MASKED_LENGTH:
        return "***"
    return mask_id(value)


def row_aad(source: str, row_ref: str) -> str:
    """Associated data binding an encrypted ID to its quarantine row."""
    return f"quarantine:{source}:{row_ref}"


def held_aad(held_batch_id: int, row_ref: str) -> str:
    """Associated data binding an encrypted ID to its held row."""
    return f"held:{held_batch_id}:{row_ref}"


def _check_rejected(rejected: pa.Table) -> None:
    for needed in ("_row_ref", "_reasons"):
        if needed not in rejected.column_names:
            raise QuarantineInputError(f"the rejected table has no {needed} column")


def _protected_rows(
    rejected: pa.Table,
    *,
    license_type: LicenseType,
    cipher: FieldCipher,
    aad: Any,
    raw: Mapping[str, dict[str, str]] | None = None,
) -> Iterable[tuple[str, list[str], dict[str, Any]]]:
    """(row_ref, reasons, row_json) of each rejected row; ``aad(ref)`` binds its ID tokens."""
    refs = [str(r) for r in rejected.column("_row_ref").to_pylist()]
    reasons = rejected.column("_reasons").to_pylist()
    id_fields = set(license_type.id_fields)
    data_columns = [c for c in rejected.column_names if c not in _META_COLUMNS]
    for i, record in enumerate(rejected.select(data_columns).to_pylist()):
        bound = aad(refs[i])
        row_json = {
            name: _protect(value, cipher=cipher, aad=bound) if name in id_fields else _plain(value)
            for name, value in record.items()
        }
        # an ID value is never kept in plaintext, whatever a mapping reason says
        kept = {k: v for k, v in (raw or {}).get(refs[i], {}).items() if k not in id_fields}
        if kept:
            row_json[RAW_KEY] = kept
        yield refs[i], [str(r) for r in reasons[i] or []], row_json


def unconverted_values(
    rejected: pa.Table, *, source_batch: pa.Table | pa.RecordBatch, source: Source
) -> dict[str, dict[str, str]]:
    """Per rejected row ref: ``{field: source text}`` of the values its mapping could not convert.

    Only date, number and code fields fail a conversion; an ID field is never taken here.
    """
    if "_row_ref" not in source_batch.schema.names or rejected.num_rows == 0:
        return {}
    wanted: dict[str, list[str]] = {}
    for ref, why in zip(
        rejected.column("_row_ref").to_pylist(),
        rejected.column("_reasons").to_pylist(),
        strict=True,
    ):
        for reason in why or []:
            if reason.startswith(_CONVERSION_REASONS):
                name = reason.split(":", 1)[1]
                conversion = source.mapping.get(name)
                if conversion is not None and conversion.column is not None:
                    wanted.setdefault(str(ref), []).append(name)
    if not wanted:
        return {}
    refs = [str(r) for r in source_batch.column("_row_ref").to_pylist()]
    position = {ref: i for i, ref in enumerate(refs) if ref in wanted}
    out: dict[str, dict[str, str]] = {}
    for ref, names in wanted.items():
        row = position.get(ref)
        if row is None:
            continue
        for name in names:
            column = source.mapping[name].column
            if column is None or column not in source_batch.schema.names:
                continue
            value = source_batch.column(column)[row].as_py()
            if value is not None:
                out.setdefault(ref, {})[name] = _plain_text(value)
    return out


def _plain_text(value: Any) -> str:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return str(value)


def record_rejected(
    *,
    session: Session,
    source: str,
    batch_seq: int,
    license_type: LicenseType,
    rejected: pa.Table,
    cipher: FieldCipher,
    now: dt.datetime,
    source_batch: pa.Table | pa.RecordBatch | None = None,
    source_spec: Source | None = None,
    reopen: bool = False,
) -> int:
    """Insert a batch's rejected rows, skipping those already there; return how many are new.

    With ``source_batch`` (the connector's batch) and ``source_spec``, values the mapping could
    not convert are kept as the department sent them (see the module docstring). With
    ``reopen``, a row already there that was resolved is opened again with the new reasons and
    values instead of skipped (a replayed row that a later step refused), and counted.
    """
    _check_rejected(rejected)
    if rejected.num_rows == 0:
        return 0
    stored: dict[str, int] = {
        ref: row_id
        for ref, row_id in session.execute(
            sa.select(QuarantineRow.row_ref, QuarantineRow.id).where(
                QuarantineRow.source == source, QuarantineRow.batch_seq == batch_seq
            )
        )
    }
    added: set[str] = set()
    reopened = 0
    rows: list[dict[str, Any]] = []
    raw = (
        unconverted_values(rejected, source_batch=source_batch, source=source_spec)
        if source_batch is not None and source_spec is not None
        else None
    )
    for ref, reasons, row_json in _protected_rows(
        rejected,
        license_type=license_type,
        cipher=cipher,
        aad=lambda ref: row_aad(source, ref),
        raw=raw,
    ):
        if ref in stored:
            if reopen:
                reopened += _swap_status(
                    session,
                    stored[ref],
                    RESOLVED,
                    status=OPEN,
                    reasons=reasons,
                    row_json=row_json,
                    created_at=now,
                    resolved_by=None,
                    resolved_at=None,
                )
            continue
        if ref in added:
            continue
        added.add(ref)
        rows.append(
            {
                "source": source,
                "license_type": license_type.code,
                "batch_seq": batch_seq,
                "row_ref": ref,
                "reasons": reasons,
                "row_json": row_json,
                "created_at": now,
                "status": OPEN,
                "replays": 0,
            }
        )
    if rows:
        session.execute(_insert_ignoring_duplicates(session), rows)
        session.flush()
    logger.info(
        "quarantine %s batch %d: %d rows recorded, %d reopened, %d already there",
        source,
        batch_seq,
        len(rows),
        reopened,
        rejected.num_rows - len(rows) - reopened,
    )
    return len(rows) + reopened


def _swap_status(session: Session, row_id: int, expected: str, **values: Any) -> int:
    """Update a row only while its status is ``expected`` (compare-and-swap); 1 if this did."""
    result = session.execute(
        sa.update(QuarantineRow)
        .where(QuarantineRow.id == row_id, QuarantineRow.status == expected)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) == 1)


def list_rows(
    *,
    session: Session,
    source: str | None = None,
    status: str | None = None,
    limit: int = 100,
) -> Sequence[QuarantineRow]:
    """The newest quarantined rows, of one source or all, in one status or any."""
    query = sa.select(QuarantineRow).order_by(QuarantineRow.id.desc()).limit(limit)
    if source is not None:
        query = query.where(QuarantineRow.source == source)
    if status is not None:
        query = query.where(QuarantineRow.status == status)
    return session.scalars(query).all()


def get_row(*, session: Session, row_id: int) -> QuarantineRow:
    """The quarantined row with id ``row_id``; NotFoundError if there is none."""
    row = session.get(QuarantineRow, row_id)
    if row is None:
        raise NotFoundError(f"no quarantined row {row_id}", code="quarantine_row_not_found")
    return row


def find_row(*, session: Session, source: str, row_ref: str) -> QuarantineRow:
    """The one open quarantined row of ``source`` with ``row_ref``.

    A source row quarantined in two runs (changed at the source, still wrong) has two open rows;
    then the caller must pick one by id (ConflictError names them).
    """
    rows = session.scalars(
        sa.select(QuarantineRow)
        .where(
            QuarantineRow.source == source,
            QuarantineRow.row_ref == row_ref,
            QuarantineRow.status == OPEN,
        )
        .order_by(QuarantineRow.id)
    ).all()
    if not rows:
        raise NotFoundError(
            f"source {source}: no open quarantined row {row_ref!r}", code="quarantine_row_not_found"
        )
    if len(rows) > 1:
        raise ConflictError(
            f"source {source}: {len(rows)} open quarantined rows have row ref {row_ref!r} "
            f"(ids {', '.join(str(r.id) for r in rows)}); choose one by id",
            code="quarantine_row_ambiguous",
        )
    return rows[0]


def mark_resolved(
    *, session: Session, row_ids: Sequence[int], by: str, now: dt.datetime
) -> list[int]:
    """Mark open rows resolved by replay batch ``by``; return the ids this call resolved."""
    resolved: list[int] = []
    for row_id in row_ids:
        # compare-and-swap: only an open row changes, so a concurrent replay cannot resolve twice
        if _swap_status(
            session,
            row_id,
            OPEN,
            status=RESOLVED,
            resolved_by=by,
            resolved_at=now,
            replays=QuarantineRow.replays + 1,
            last_replayed_at=now,
            last_replay_reasons=None,
        ):
            resolved.append(row_id)
    session.flush()
    return resolved


def note_replay_failure(
    *, session: Session, row_id: int, reasons: Sequence[str], now: dt.datetime
) -> None:
    """Record that a replay of ``row_id`` failed again, and why (reason codes only)."""
    session.execute(
        sa.update(QuarantineRow)
        .where(QuarantineRow.id == row_id)
        .values(
            replays=QuarantineRow.replays + 1,
            last_replayed_at=now,
            last_replay_reasons=list(reasons),
        )
        .execution_options(synchronize_session=False)
    )


def decrypt_row(row: QuarantineRow, *, cipher: FieldCipher) -> dict[str, Any]:
    """The row's values with ID numbers decrypted (for an authorised engineer's export only)."""
    return _decrypt_json(row.row_json, cipher=cipher, aad=row_aad(row.source, row.row_ref))


def masked_row(row_json: Mapping[str, Any]) -> dict[str, Any]:
    """The row's values with ID numbers masked (safe to show)."""
    return {
        name: value["masked"] if _is_protected(value) else value for name, value in row_json.items()
    }


# --- held batches ---------------------------------------------------------------------------------


def hold_batch(
    *,
    session: Session,
    source: str,
    batch_seq: int,
    license_type: LicenseType,
    rejected: pa.Table,
    rows_in: int,
    rows_counted: int,
    threshold: float,
    reasons: Mapping[str, int],
    cipher: FieldCipher,
    now: dt.datetime,
    quality_run_id: int | None = None,
    source_batch: pa.Table | pa.RecordBatch | None = None,
    source_spec: Source | None = None,
) -> HeldBatch:
    """Keep the rejected rows of a batch that failed its threshold, for inspection.

    The batch's good rows are not kept: nothing of the batch was published, so the source is
    read again from the same watermark on the next run and delivers them again.
    """
    _check_rejected(rejected)
    digest = _digest(rejected)
    held = session.scalars(
        sa.select(HeldBatch).where(
            HeldBatch.source == source,
            HeldBatch.batch_seq == batch_seq,
            HeldBatch.digest == digest,
        )
    ).one_or_none()
    if held is not None:
        held.attempts += 1
        held.last_seen_at = now
        if quality_run_id is not None:
            held.quality_run_id = quality_run_id
        session.flush()
        return held
    held = HeldBatch(
        source=source,
        license_type=license_type.code,
        batch_seq=batch_seq,
        digest=digest,
        rows_in=rows_in,
        rows_rejected=rejected.num_rows,
        rows_counted=rows_counted,
        threshold=threshold,
        reasons=dict(reasons),
        quality_run_id=quality_run_id,
        created_at=now,
        last_seen_at=now,
        attempts=1,
    )
    session.add(held)
    session.flush()
    held_id = held.id
    raw = (
        unconverted_values(rejected, source_batch=source_batch, source=source_spec)
        if source_batch is not None and source_spec is not None
        else None
    )
    rows = [
        {"held_batch_id": held_id, "row_ref": ref, "reasons": why, "row_json": row_json}
        for ref, why, row_json in _protected_rows(
            rejected,
            license_type=license_type,
            cipher=cipher,
            aad=lambda ref: held_aad(held_id, ref),
            raw=raw,
        )
    ]
    if rows:
        session.execute(sa.insert(HeldRow), rows)
        session.flush()
    logger.warning(
        "source %s batch %d held (held batch %d): %d of %d rows rejected",
        source,
        batch_seq,
        held_id,
        rejected.num_rows,
        rows_in,
    )
    return held


def list_held(
    *, session: Session, source: str | None = None, limit: int = 100
) -> Sequence[HeldBatch]:
    """The newest held batches, of one source or all."""
    query = sa.select(HeldBatch).order_by(HeldBatch.id.desc()).limit(limit)
    if source is not None:
        query = query.where(HeldBatch.source == source)
    return session.scalars(query).all()


def get_held(*, session: Session, held_id: int) -> tuple[HeldBatch, Sequence[HeldRow]]:
    """A held batch and its rows; NotFoundError if there is none."""
    held = session.get(HeldBatch, held_id)
    if held is None:
        raise NotFoundError(f"no held batch {held_id}", code="held_batch_not_found")
    rows = session.scalars(
        sa.select(HeldRow).where(HeldRow.held_batch_id == held_id).order_by(HeldRow.id)
    ).all()
    return held, rows


def decrypt_held_row(row: HeldRow, *, cipher: FieldCipher) -> dict[str, Any]:
    """A held row's values with ID numbers decrypted (for an authorised engineer's export)."""
    return _decrypt_json(row.row_json, cipher=cipher, aad=held_aad(row.held_batch_id, row.row_ref))


# --- export ---------------------------------------------------------------------------------------


def write_export(
    path: Path,
    *,
    license_type: LicenseType,
    records: Sequence[Mapping[str, Any]],
    id_column: str = EXPORT_ID,
    overwrite: bool = False,
) -> int:
    """Write decrypted rows as CSV (UTF-8 with BOM, so spreadsheets read Chinese) mode 0600.

    Each record has ``id``, ``source``, ``row_ref``, ``reasons`` and ``values`` (decrypted).
    Columns: ``<id_column>, source, row_ref, reasons``, then the license fields present in any
    row, in catalog order; a value the mapping could not convert is written as the department
    sent it. Returns the number of rows written.
    """
    present = {name for r in records for name in r["values"] if name != RAW_KEY}
    fields = [f.name for f in license_type.fields if f.name in present]
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise ConflictError(f"{path} exists; choose another file", code="export_exists") from None
    os.fchmod(fd, 0o600)  # an existing file overwritten keeps its mode otherwise
    with os.fdopen(fd, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([id_column, "source", "row_ref", "reasons", *fields])
        for record in records:
            values = with_unconverted(record["values"])
            writer.writerow(
                [
                    record["id"],
                    record["source"],
                    record["row_ref"],
                    "; ".join(record["reasons"]),
                    *(_cell(values.get(name)) for name in fields),
                ]
            )
    logger.warning(
        "exported %d rows of %s with ID numbers decrypted to %s",
        len(records),
        license_type.code,
        path,
    )
    return len(records)


def with_unconverted(values: Mapping[str, Any]) -> dict[str, Any]:
    """A row's values with each value the mapping nulled replaced by the source's text."""
    raw = values.get(RAW_KEY) or {}
    out = {k: v for k, v in values.items() if k != RAW_KEY}
    for name, text in raw.items():
        if out.get(name) is None:
            out[name] = text
    return out


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else repr(value)
    return str(value)


# --- helpers --------------------------------------------------------------------------------------


def _is_protected(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"masked", "enc"}


def _decrypt_json(row_json: Mapping[str, Any], *, cipher: FieldCipher, aad: str) -> dict[str, Any]:
    return {
        name: cipher.decrypt_text(str(value["enc"]), aad=aad) if _is_protected(value) else value
        for name, value in row_json.items()
    }


def _protect(value: Any, *, cipher: FieldCipher, aad: str) -> Any:
    if value is None:
        return None
    text = str(value)
    return {"masked": mask_raw_id(text), "enc": cipher.encrypt(text, aad=aad)}


def _plain(value: Any) -> Any:
    """A JSON-safe form: dates as ISO text, non-finite floats as text (JSON has no NaN)."""
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _digest(rejected: pa.Table) -> str:
    """SHA-256 over the rejected row refs and their reasons (no values: no ID number)."""
    h = hashlib.sha256()
    refs = rejected.column("_row_ref").to_pylist()
    reasons = rejected.column("_reasons").to_pylist()
    for ref, why in sorted(zip(refs, reasons, strict=True), key=lambda p: str(p[0])):
        h.update(f"{ref}\x1f{';'.join(why or [])}\x1e".encode())
    return h.hexdigest()


def _insert_ignoring_duplicates(session: Session) -> Any:
    """An INSERT that skips rows already present (a concurrent writer may have added them)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(QuarantineRow).on_conflict_do_nothing(
            index_elements=["source", "batch_seq", "row_ref"]
        )
    if dialect == "sqlite":
        return sqlite.insert(QuarantineRow).on_conflict_do_nothing(
            index_elements=["source", "batch_seq", "row_ref"]
        )
    # elsewhere the pre-filter has to do; INSERT IGNORE would also hide truncation on MariaDB
    return sa.insert(QuarantineRow)
