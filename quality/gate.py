"""The quality gate: split a mapped batch into good rows and rejected rows with their reasons.

A :class:`Gate` is built once per license type (GX context, suite and batch definition are made
once, in memory, and reused for every batch). ``check`` runs the catalog's suite on the batch and
returns the good rows (identifier fields replaced by their canonical form), the rejected rows
with every reason, and a JSON-safe report that holds counts only, never values.

GX fingerprints every pandas batch under 1 GB (an MD5 over ``hash_pandas_object``, about 0.7 s
per million rows) only to show it among the result's batch markers. The gate never uses it, and
a digest of a batch of ID numbers is nothing a report should carry, so :class:`Gate` turns it off
for the process (:func:`disable_batch_fingerprint`); nothing else in GX reads it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import great_expectations as gx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from great_expectations.core.expectation_validation_result import (
    ExpectationSuiteValidationResult,
    ExpectationValidationResult,
)
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)
from great_expectations.execution_engine import pandas_execution_engine
from great_expectations.expectations.expectation_configuration import ExpectationConfiguration
from great_expectations.validator.v1_validator import Validator

from catalog_schemas.errors import FatalError
from catalog_schemas.model import FieldType, LicenseType, Source
from quality.expectation import IdType, check_holder_ids, check_ids
from quality.suite import ID_FIELD_KEY, REASON_KEY, build_suite, unique_column

logger = logging.getLogger(__name__)

ROW_REF = "_row_ref"
ERRORS = "_errors"
REASONS = "_reasons"

#: Arrow type of each catalog field type in a mapped batch.
ARROW_TYPE: dict[FieldType, pa.DataType] = {
    "string": pa.string(),
    "code": pa.string(),
    "resident_id": pa.string(),
    "credit_code": pa.string(),
    "holder_id": pa.string(),
    "date": pa.date32(),
    "integer": pa.int64(),
    "decimal": pa.float64(),
}

# Row indexes of every failure, but no values: GX would otherwise copy raw values (ID numbers
# among them) into the result, and the index query string would repeat the whole index list.
_RESULT_FORMAT: dict[str, Any] = {
    "result_format": "COMPLETE",
    "exclude_unexpected_values": True,
    "return_unexpected_index_query": False,
    "partial_unexpected_count": 0,
}

# An ID value of this shape that passes its check is already canonical (see Gate._id_check).
_CANONICAL_SHAPE = "^[0-9A-Z]{18}$"

# datetime64[ns] spans 1677-09-22 .. 2262-04-11 (days since 1970-01-01)
_NS_MIN_DAY = -106_751
_NS_MAX_DAY = 106_751
_NS_PER_DAY = 86_400 * 1_000_000_000


def disable_batch_fingerprint() -> None:
    """Stop GX fingerprinting pandas batches (a process-wide module setting; see above)."""
    # batches whose memory_usage().sum() is below HASH_THRESHOLD are hashed; none is below 0
    pandas_execution_engine.HASH_THRESHOLD = 0


class GateInputError(FatalError):
    """The batch handed to the gate does not have the shape the mapping promises."""

    code = "gate_input_invalid"


class GateError(FatalError):
    """The gate's own checks disagree or a GX expectation raised: a bug, never a data problem."""

    code = "gate_failed"


@dataclass(frozen=True)
class GateResult:
    """Good rows, rejected rows with ``_reasons``, and a report of counts (no values)."""

    good: pa.Table
    rejected: pa.Table
    report: dict[str, Any]


class Gate:
    """The quality gate of one license type; build once, then ``check`` every batch.

    Duplicate license numbers: every row of a duplicate group is rejected (``duplicate:<field>``),
    not only the later copies, because the gate cannot know which copy is right; the department
    must fix it at the source.
    """

    def __init__(
        self,
        license_type: LicenseType,
        *,
        today: dt.date | None = None,
        source: Source | None = None,
    ) -> None:
        disable_batch_fingerprint()
        self.license_type = license_type
        self.today = today
        self.source = source
        self._fields = {f.name: f for f in license_type.fields}
        self._kind_fields = {h.id_field: (h.kind_field, h.kinds) for h in license_type.holders}
        self._context = gx.get_context(
            mode="ephemeral",
            project_config=DataContextConfig(
                store_backend_defaults=InMemoryStoreBackendDefaults(),
                analytics_enabled=False,
                progress_bars=ProgressBarsConfig(globally=False),
            ),
        )
        asset = self._context.data_sources.add_pandas(
            f"gate.{license_type.code}"
        ).add_dataframe_asset("batch")
        self._batch_definition = asset.add_batch_definition_whole_dataframe("whole")
        self.suite = self._context.suites.add(build_suite(license_type, today=today, source=source))

    def check(self, table: pa.Table) -> GateResult:
        """Validate ``table`` (a mapped batch) and split it into good and rejected rows."""
        table = self._conform(table)
        n = table.num_rows
        validator = Validator(
            batch_definition=self._batch_definition,
            batch_parameters={"dataframe": self._frame(table)},
            result_format=_RESULT_FORMAT,
        )
        result = validator.validate_expectation_suite(self.suite)
        rows, reasons, canonical, expectations, mapping = self._collect(table, result)

        failures = pd.DataFrame({"row": rows, "reason": reasons})
        failures = failures.drop_duplicates(ignore_index=True)
        failures = failures.sort_values("row", kind="stable", ignore_index=True)
        bad_rows, counts = np.unique(failures["row"].to_numpy(), return_counts=True)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
        reason_lists = pa.ListArray.from_arrays(
            pa.array(offsets), pa.array(failures["reason"].to_numpy(dtype=object), pa.string())
        )
        rejected = table.take(pa.array(bad_rows, pa.int64())).append_column(REASONS, reason_lists)

        good_mask = np.ones(n, dtype=bool)
        good_mask[bad_rows] = False
        keep = pa.array(good_mask)
        good = table.filter(keep)
        for name, values in canonical.items():
            good = good.set_column(good.schema.get_field_index(name), name, values.filter(keep))
        if ERRORS in good.column_names:
            good = good.drop_columns([ERRORS])

        if n != good.num_rows + rejected.num_rows:
            raise GateError(
                f"rows_in {n} != rows_good {good.num_rows} + rows_rejected {rejected.num_rows}"
            )
        reason_counts = failures["reason"].value_counts(sort=True)
        report: dict[str, Any] = {
            "license_type": self.license_type.code,
            "suite": self.suite.name,
            "rows_in": n,
            "rows_good": good.num_rows,
            "rows_rejected": rejected.num_rows,
            "reasons": {str(k): int(v) for k, v in reason_counts.items()},
            "mapping": mapping,
            "expectations": expectations,
        }
        logger.info(
            "gate %s: %d rows in, %d good, %d rejected",
            self.license_type.code,
            n,
            good.num_rows,
            rejected.num_rows,
        )
        return GateResult(good=good, rejected=rejected, report=report)

    def _conform(self, table: pa.Table) -> pa.Table:
        """Check the batch's shape and normalise column types; raise GateInputError if wrong."""
        names = table.column_names
        if len(set(names)) != len(names):
            raise GateInputError("the batch has duplicate column names")
        unknown = sorted(set(names) - set(self._fields) - {ROW_REF, ERRORS})
        if unknown:
            raise GateInputError(
                f"columns {unknown} are not fields of {self.license_type.code} "
                f"(nor {ROW_REF}/{ERRORS})"
            )
        if ROW_REF not in names:
            raise GateInputError(f"the batch has no {ROW_REF} column")
        for name in names:
            column = table.column(name)
            if name == ERRORS:
                target: pa.DataType = pa.list_(pa.string())
                ok = pa.types.is_null(column.type) or (
                    (pa.types.is_list(column.type) or pa.types.is_large_list(column.type))
                    and _is_string_like(column.type.value_type)
                )
            else:
                target = pa.string() if name == ROW_REF else ARROW_TYPE[self._fields[name].type]
                ok = _castable(column.type, target)
            if not ok:
                raise GateInputError(f"column {name}: expected {target}, got {column.type}")
            if column.type != target:
                table = table.set_column(names.index(name), name, column.cast(target))
        refs = table.column(ROW_REF)
        if refs.null_count:
            raise GateInputError(f"{ROW_REF} has {refs.null_count} null values")
        if pc.count_distinct(refs).as_py() != table.num_rows:
            raise GateInputError(f"{ROW_REF} is not unique within the batch")
        return table

    def _frame(self, table: pa.Table) -> pd.DataFrame:
        """The pandas frame GX validates: every catalog field, dates as datetime64[ns]."""
        n = table.num_rows
        columns: dict[str, Any] = {}
        for name, spec in self._fields.items():
            if name in table.column_names:
                column = table.column(name)
            else:
                # an absent optional field is all null; an absent required one fails not-null
                column = pa.chunked_array([pa.nulls(n, ARROW_TYPE[spec.type])])
            if spec.type == "date":
                columns[name] = _datetime_ns(column)
            else:
                columns[name] = column.to_pandas()
        no = self.license_type.license_no_field
        key = unique_column(self.license_type)
        if key != no:
            # an ID-number license number is unique in its canonical form (see unique_column);
            # an invalid one keeps its raw value (it is rejected for the ID anyway)
            if no in table.column_names:
                canonical, _ = self._id_check(table, no, np.empty(0, dtype=np.int64))
                raw = table.column(no).combine_chunks().cast(pa.string())
                columns[key] = pc.coalesce(canonical, raw).to_pandas()
            else:
                columns[key] = pa.nulls(n, pa.string()).to_pandas()
        return pd.DataFrame(columns, index=pd.RangeIndex(n))

    def _id_check(
        self, table: pa.Table, name: str, flagged: np.ndarray
    ) -> tuple[pa.Array, pa.Array]:
        """Canonical values and reasons of ID field ``name``, given the rows GX flagged.

        GX already ran the check over the whole column. Running it again here only on the rows
        that need it keeps the cost of a batch to one pass: the flagged rows (for their reason
        code) and the rows not already written as 18 characters of [0-9A-Z] (for their canonical
        form: a 15-digit number, lower-case x, separators, full-width forms). A valid value that
        is already 18 such characters is its own canonical form.
        """
        values = table.column(name).combine_chunks().cast(pa.string())
        n = len(values)
        plain = pc.fill_null(pc.match_substring_regex(values, _CANONICAL_SHAPE), True)
        need = np.zeros(n, dtype=bool)
        need[flagged] = True
        need |= ~np.asarray(plain.to_numpy(zero_copy_only=False), dtype=bool)
        subset = np.flatnonzero(need)
        take = pa.array(subset, pa.int64())
        spec = self._fields[name]
        if spec.type == "holder_id":
            kind_field, kinds = self._kind_fields[name]
            assert kind_field is not None  # suite building already refused otherwise
            kind_values = (
                table.column(kind_field).combine_chunks().cast(pa.string())
                if kind_field in table.column_names
                else pa.nulls(n, pa.string())
            )
            check = check_holder_ids(
                values.take(take), kind_values.take(take), allowed=kinds, today=self.today
            )
        else:
            id_type: IdType = "resident_id" if spec.type == "resident_id" else "credit_code"
            check = check_ids(values.take(take), id_type=id_type, today=self.today)
        canonical = pc.replace_with_mask(values, pa.array(need), check.canonical)
        reason = pa.nulls(n, pa.string())
        reason = pc.replace_with_mask(reason, pa.array(need), check.reason)
        return canonical, reason

    def _collect(
        self, table: pa.Table, result: ExpectationSuiteValidationResult
    ) -> tuple[np.ndarray, pa.Array, dict[str, pa.Array], list[dict[str, Any]], dict[str, int]]:
        """Every (row, reason) pair, mapping errors first; canonical ID columns; the report of
        each expectation; the rows per mapping reason."""
        row_parts: list[np.ndarray] = []
        reason_parts: list[pa.Array] = []
        canonical: dict[str, pa.Array] = {}
        mapping: dict[str, int] = {}
        if ERRORS in table.column_names:
            errors = table.column(ERRORS).combine_chunks()
            flat = pc.list_flatten(errors)
            present = flat.is_valid()
            parents = pc.list_parent_indices(errors).filter(present)
            pairs = pd.DataFrame(
                {
                    "row": parents.to_numpy().astype(np.int64),
                    "reason": flat.filter(present).to_numpy(zero_copy_only=False),
                }
            ).drop_duplicates()
            mapping = {str(k): int(v) for k, v in pairs["reason"].value_counts().items()}
            row_parts.append(parents.to_numpy().astype(np.int64))
            reason_parts.append(flat.filter(present))
        report: list[dict[str, Any]] = []
        by_id = {str(e.id): i for i, e in enumerate(self.suite.expectations)}
        configured: list[tuple[int, ExpectationConfiguration, ExpectationValidationResult]] = []
        for item in result.results:
            if item.expectation_config is None:
                raise GateError("GX returned a result without its expectation")
            config = item.expectation_config
            configured.append((by_id[str(config.id)], config, item))
        for _, config, item in sorted(configured, key=lambda c: c[0]):
            meta = config.meta or {}
            if item.exception_info and item.exception_info.get("raised_exception"):
                raise GateError(
                    f"{config.type} on {_columns(config.kwargs)} raised: "
                    f"{item.exception_info.get('exception_message')}"
                )
            unexpected = np.sort(
                np.asarray(item.result.get("unexpected_index_list") or [], dtype=np.int64)
            )
            if REASON_KEY in meta:
                reason = str(meta[REASON_KEY])
                row_parts.append(unexpected)
                reason_parts.append(
                    pa.array(np.full(unexpected.size, reason, dtype=object), pa.string())
                )
            else:
                field = str(meta[ID_FIELD_KEY])
                reason = f"id:{field}"
                if field in table.column_names:
                    values, reasons = self._id_check(table, field, unexpected)
                    canonical[field] = values
                    failed = np.flatnonzero(reasons.is_valid().to_numpy(zero_copy_only=False))
                    if not np.array_equal(failed, unexpected):
                        raise GateError(f"GX and the gate disagree on the rows failing {reason}")
                    row_parts.append(failed)
                    reason_parts.append(
                        pc.binary_join_element_wise(reasons.drop_null(), field, ":")
                    )
            report.append(
                {
                    "expectation": config.type,
                    "columns": _columns(config.kwargs),
                    "reason": reason,
                    "success": bool(item.success),
                    "element_count": int(item.result.get("element_count") or table.num_rows),
                    "missing_count": int(item.result.get("missing_count") or 0),
                    "unexpected_count": int(item.result.get("unexpected_count") or 0),
                }
            )
        rows = np.concatenate(row_parts) if row_parts else np.empty(0, dtype=np.int64)
        reasons_all = (
            pa.concat_arrays([r.cast(pa.string()) for r in reason_parts])
            if reason_parts
            else pa.array([], pa.string())
        )
        return rows, reasons_all, canonical, report, mapping


def _columns(kwargs: dict[str, Any]) -> list[str]:
    keys: Iterable[str] = ("column", "column_A", "column_B")
    return [str(kwargs[k]) for k in keys if kwargs.get(k) is not None]


def _is_string_like(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t))


def _castable(source: pa.DataType, target: pa.DataType) -> bool:
    """Lossless representation changes only: string views, narrower ints, all-null columns."""
    if source == target or pa.types.is_null(source):
        return True
    if pa.types.is_date32(target):
        return bool(pa.types.is_date64(source))
    if pa.types.is_string(target):
        return _is_string_like(source)
    if pa.types.is_int64(target):
        return bool(pa.types.is_integer(source))
    if pa.types.is_float64(target):
        return bool(pa.types.is_floating(source) or pa.types.is_integer(source))
    return False


def _datetime_ns(column: pa.ChunkedArray) -> pd.Series:
    """Dates as datetime64[ns] (GX checks datetime64[s] row by row), clipped to its range.

    Clipping keeps the order of every pair unless both dates lie beyond the same bound (before
    1677 or after 2262), which no real license date does.
    """
    days = column.combine_chunks().cast(pa.int32())
    valid = days.is_valid().to_numpy(zero_copy_only=False)
    raw = np.asarray(days.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
    ns = np.clip(raw, _NS_MIN_DAY, _NS_MAX_DAY) * _NS_PER_DAY
    out = ns.view("datetime64[ns]").copy()
    out[~valid] = np.datetime64("NaT")
    return pd.Series(out)
