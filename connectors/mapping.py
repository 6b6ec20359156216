"""From a batch of source columns to the fields of a license type, as a source's YAML mapping says.

Per field, in this order: take the column (or the constant) as text; blank becomes null; the
string conversions in the order listed (trim, halfwidth, upper); blank becomes null again; the
code map (or, for a code field without one, a check that the value is a catalog code); then the
typed parse (date, integer, decimal), taken from the conversions or else from the field's type.
A value that fails a step becomes null and its row gets a reason in ``_errors``:
``bad_date:<field>``, ``bad_integer:<field>``, ``bad_decimal:<field>``, ``unknown_code:<field>``;
a SQL row without a watermark gets ``missing_watermark:<column>``.
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
    Source,
    SqlConnector,
)
from connectors import conversion
from connectors.base import ROW_REF
from connectors.conversion import Mask

ERRORS = "_errors"

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
    return pa.schema(
        [*fields, pa.field(ROW_REF, pa.string()), pa.field(ERRORS, pa.list_(pa.string()))]
    )


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
    names = batch.schema.names
    if ROW_REF not in names:
        raise FatalError(
            f"source {source.name!r}: the batch has no {ROW_REF} column", code="mapping_invalid"
        )
    delivered = ", ".join(n for n in names if n != ROW_REF)
    for target, conv in source.mapping.items():
        if conv.column is not None and conv.column not in names:
            raise FatalError(
                f"source {source.name!r}: mapping of {target!r} reads column {conv.column!r}, "
                f"which the source did not deliver (columns: {delivered})",
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
    if isinstance(connector, SqlConnector) and connector.watermark in names:
        missing = pc.is_null(batch.column(connector.watermark)).to_numpy(zero_copy_only=False)
        failures.append(
            (f"missing_watermark:{connector.watermark}", np.asarray(missing, dtype=np.bool_))
        )

    columns.append(conversion.as_text(batch.column(ROW_REF)))
    columns.append(_error_lists(failures, batch.num_rows))
    return pa.Table.from_arrays(columns, schema=output_schema(license_type, source))


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
