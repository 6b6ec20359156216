"""From a batch of source columns to the fields of a license type, as a source's YAML mapping says.

Per field, in this order: take the column (or the constant) as text; blank becomes null; the
string conversions in the order listed (trim, halfwidth, upper); blank becomes null again; the
code map (or, for a code field without one, a check that the value is a catalog code); then the
typed parse (date, integer, decimal), taken from the conversions or else from the field's type.
A value that fails a step becomes null and its row gets a reason in ``_errors``:
``bad_date:<field>``, ``bad_integer:<field>``, ``bad_decimal:<field>``, ``unknown_code:<field>``;
a SQL or REST row without a watermark gets ``missing_watermark:<column>``.

A source that declares ``soft_delete`` gets one more column, ``_deleted`` (boolean, never null):
whether the row's flag (or deleted-at) column says the department deleted it. The pipeline turns
those rows into deletions in the lake instead of gating them as records.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from catalog_schemas.errors import FatalError
from catalog_schemas.model import (
    Conversion,
    FieldSpec,
    FieldType,
    LicenseType,
    RestConnector,
    SoftDelete,
    Source,
    SqlConnector,
)
from connectors import conversion
from connectors.base import ROW_REF
from connectors.conversion import Mask

ERRORS = "_errors"
DELETED = "_deleted"

ARROW_TYPES: dict[FieldType, pa.DataType] = {
    "string": pa.string(),
    "code": pa.string(),
    "resident_id": pa.string(),
    "credit_code": pa.string(),
    "holder_id": pa.string(),
    "date": pa.date32(),
    "integer": pa.int64(),
    "decimal": pa.float64(),
}

_STRING_STEPS: dict[str, Callable[[pa.Array], pa.Array]] = {
    "trim": conversion.trim,
    "halfwidth": conversion.halfwidth,
    "upper": conversion.upper,
}
_TYPED_STEPS = ("date", "integer", "decimal")


def output_schema(license_type: LicenseType, source: Source) -> pa.Schema:
    """The schema :func:`apply_mapping` returns for this source and license type."""
    fields = [
        pa.field(f.name, ARROW_TYPES[f.type])
        for f in license_type.fields
        if f.name in source.mapping
    ]
    system = [pa.field(ROW_REF, pa.string()), pa.field(ERRORS, pa.list_(pa.string()))]
    if source.connector.soft_delete is not None:
        system.append(pa.field(DELETED, pa.bool_(), nullable=False))
    return pa.schema([*fields, *system])


def apply_mapping(batch: pa.RecordBatch, *, source: Source, license_type: LicenseType) -> pa.Table:
    """One typed column per mapped field, plus ``_row_ref`` and the ``_errors`` of each row."""
    if source.license_type != license_type.code:
        raise FatalError(
            f"source {source.name!r} feeds {source.license_type!r}, not {license_type.code!r}",
            code="mapping_invalid",
        )
    known = {f.name for f in license_type.fields}
    unknown = sorted(set(source.mapping) - known)
    if unknown:
        raise FatalError(
            f"source {source.name!r}: mapping names fields {unknown} "
            f"that {license_type.code} lacks",
            code="mapping_invalid",
        )
    if batch.num_rows == 0:
        batch = _with_every_column(batch, source)
    names = batch.schema.names
    if ROW_REF not in names:
        raise FatalError(
            f"source {source.name!r}: the batch has no {ROW_REF} column", code="mapping_invalid"
        )
    delivered = ", ".join(n for n in names if n != ROW_REF)
    for target, conv in source.mapping.items():
        if conv.column is not None and conv.column not in names:
            raise FatalError(
                f"{source.where(f'mapping.{target}')}: source {source.name!r}: mapping of "
                f"{target!r} reads column {conv.column!r}, which the source did not deliver "
                f"(columns: {delivered})",
                code="mapping_column_missing",
            )
    soft_delete = source.connector.soft_delete
    if soft_delete is not None and soft_delete.column not in names:
        raise FatalError(
            f"{source.where('connector.soft_delete')}: source {source.name!r}: soft_delete reads "
            f"column {soft_delete.column!r}, which the source did not deliver "
            f"(columns: {delivered})",
            code="mapping_column_missing",
        )

    failures: list[tuple[str, Mask]] = []
    columns: list[pa.Array] = []
    for spec in license_type.fields:
        if spec.name not in source.mapping:
            continue
        values, field_failures = _field(batch, source.mapping[spec.name], spec, source)
        columns.append(values)
        failures.extend(field_failures)

    connector = source.connector
    watermark = connector.watermark if isinstance(connector, SqlConnector | RestConnector) else None
    if watermark is not None and watermark in names:
        missing = pc.is_null(
            conversion.blank_to_null(conversion.as_text(batch.column(watermark)))
        ).to_numpy(zero_copy_only=False)
        failures.append((f"missing_watermark:{watermark}", np.asarray(missing, dtype=np.bool_)))

    columns.append(conversion.as_text(batch.column(ROW_REF)))
    columns.append(_error_lists(failures, batch.num_rows))
    if soft_delete is not None:
        columns.append(deleted_mask(batch.column(soft_delete.column), soft_delete))
    return pa.Table.from_arrays(columns, schema=output_schema(license_type, source))


def _with_every_column(batch: pa.RecordBatch, source: Source) -> pa.RecordBatch:
    """An empty batch with every column the mapping reads (an empty page names no columns)."""
    wanted = [c.column for c in source.mapping.values() if c.column is not None]
    if source.connector.soft_delete is not None:
        wanted.append(source.connector.soft_delete.column)
    if ROW_REF not in batch.schema.names:
        wanted.append(ROW_REF)
    missing = [n for n in dict.fromkeys(wanted) if n not in batch.schema.names]
    for name in missing:
        batch = batch.append_column(name, pa.array([], pa.string()))
    return batch


def deleted_mask(values: pa.Array | pa.ChunkedArray, soft_delete: SoftDelete) -> pa.Array:
    """Whether each row is deleted: its flag is one of the values, or its deleted-at is set."""
    text = conversion.blank_to_null(conversion.as_text(values))
    if soft_delete.flag is not None:
        wanted = pa.array(sorted({v.strip().lower() for v in soft_delete.values}), pa.string())
        deleted = pc.is_in(pc.utf8_lower(pc.utf8_trim_whitespace(text)), value_set=wanted)
    else:
        deleted = pc.is_valid(text)
    return pc.fill_null(deleted, False)


def _field(
    batch: pa.RecordBatch, conv: Conversion, spec: FieldSpec, source: Source
) -> tuple[pa.Array, list[tuple[str, Mask]]]:
    n = batch.num_rows
    if conv.const is not None:
        values = pa.array([conv.const], pa.string()).take(pa.array(np.zeros(n, dtype=np.int64)))
    else:
        values = conversion.as_text(batch.column(conv.column))
    values = conversion.blank_to_null(values)
    typed = [step for step in conv.convert if step in _TYPED_STEPS]
    if len(typed) > 1:
        raise FatalError(
            f"source {source.name!r}: mapping of {spec.name!r} lists more than one "
            f"of {_TYPED_STEPS}",
            code="mapping_invalid",
        )
    for step in conv.convert:
        if step in _STRING_STEPS:
            values = _STRING_STEPS[step](values)
    values = conversion.blank_to_null(values)

    failures: list[tuple[str, Mask]] = []
    if conv.codes is not None:
        values, bad = conversion.map_codes(values, conv.codes)
        failures.append((f"unknown_code:{spec.name}", bad))
    elif spec.type == "code":
        values, bad = conversion.check_codes(values, spec.codes or {})
        failures.append((f"unknown_code:{spec.name}", bad))

    parse = typed[0] if typed else spec.type if spec.type in _TYPED_STEPS else None
    if parse == "date":
        try:
            values, bad = conversion.parse_date(values, conv.date_format)
        except FatalError as exc:
            raise FatalError(
                f"source {source.name!r}: mapping of {spec.name!r}: {exc}", code=exc.code
            ) from None
        failures.append((f"bad_date:{spec.name}", bad))
    elif parse == "integer":
        values, bad = conversion.parse_integer(values)
        failures.append((f"bad_integer:{spec.name}", bad))
    elif parse == "decimal":
        values, bad = conversion.parse_decimal(values)
        failures.append((f"bad_decimal:{spec.name}", bad))

    target = ARROW_TYPES[spec.type]
    if values.type != target:
        if target == pa.string() or (target == pa.float64() and values.type == pa.int64()):
            values = pc.cast(values, target)
        elif target == pa.int64() and values.type == pa.float64():
            values, bad = conversion.to_integer(values)
            failures.append((f"bad_integer:{spec.name}", bad))
        else:
            raise FatalError(
                f"source {source.name!r}: mapping of {spec.name!r} converts to {values.type}, "
                f"which cannot fill a {spec.type} field",
                code="mapping_invalid",
            )
    return values, failures


def _error_lists(failures: list[tuple[str, Mask]], rows: int) -> pa.Array:
    """Per row, the reasons whose mask is set, in the order the failures were found."""
    failures = [(reason, mask) for reason, mask in failures if mask.any()]
    if not failures:
        offsets = np.zeros(rows + 1, dtype=np.int32)
        return pa.ListArray.from_arrays(pa.array(offsets), pa.array([], pa.string()))
    matrix = np.column_stack([mask for _, mask in failures])
    _, reason_index = np.nonzero(matrix)  # row-major: grouped by row, in reason order
    labels = pa.array([reason for reason, _ in failures], pa.string()).take(pa.array(reason_index))
    offsets = np.concatenate([[0], np.cumsum(matrix.sum(axis=1))]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), labels)
