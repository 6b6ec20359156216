"""Custom great_expectations expectations for identifiers and division codes, computed vectorised.

The ID checks themselves live in :mod:`catalog_schemas.holder`; this module only adapts them to
GX (a metric provider per check plus its expectation) and dispatches a column of either kind of
holder ID on the holder's kind column. The division-code check looks codes up in a boolean array
indexed by the six-digit code, built once from :mod:`catalog_schemas.division`'s GB/T 2260 table.
Each expectation has a prescriptive renderer, so Data Docs describe it in words. Importing the
module registers the expectations with GX.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from great_expectations.execution_engine.pandas_execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import (
    ColumnMapExpectation,
    ColumnPairMapExpectation,
)
from great_expectations.expectations.expectation_configuration import ExpectationConfiguration
from great_expectations.expectations.metrics.map_metric_provider.column_condition_partial import (
    column_condition_partial,
)
from great_expectations.expectations.metrics.map_metric_provider.column_map_metric_provider import (
    ColumnMapMetricProvider,
)
from great_expectations.expectations.metrics.map_metric_provider.column_pair_condition_partial import (  # noqa: E501
    column_pair_condition_partial,
)
from great_expectations.expectations.metrics.map_metric_provider.column_pair_map_metric_provider import (  # noqa: E501
    ColumnPairMapMetricProvider,
)
from great_expectations.render.components import LegacyRendererType, RenderedStringTemplateContent
from great_expectations.render.renderer.renderer import renderer

from catalog_schemas.division import DivisionTable, load_division_table
from catalog_schemas.holder import HOLDER_KIND_REASON, check_credit_codes, check_resident_ids

IdType = Literal["resident_id", "credit_code"]

#: Holder kind (catalog code) -> the ID type that kind of holder carries.
KIND_ID_TYPE: dict[str, IdType] = {"natural_person": "resident_id", "legal_person": "credit_code"}


@dataclass(frozen=True)
class IdCheck:
    """Result of checking a column of IDs: canonical form and reason code, null where n/a."""

    canonical: pa.Array
    reason: pa.Array


def check_ids(values: pa.Array, *, id_type: IdType, today: dt.date | None = None) -> IdCheck:
    """Check a column of one ID type (nulls come back with null canonical and null reason)."""
    values = _as_string(values)
    if id_type == "resident_id":
        result = check_resident_ids(values, today=today)
    else:
        result = check_credit_codes(values)
    return IdCheck(canonical=_as_string(result.canonical), reason=_as_string(result.reason))


def check_holder_ids(
    values: pa.Array,
    kinds: pa.Array,
    *,
    allowed: Sequence[str] = tuple(KIND_ID_TYPE),
    today: dt.date | None = None,
) -> IdCheck:
    """Check IDs of a holder of either kind, each row by the kind in ``kinds``.

    Rows are split by kind so each checker runs once, vectorised, over its own rows; a non-null
    ID whose kind is null or not in ``allowed`` gets ``holder_kind`` (as in catalog_schemas.holder).
    """
    values = _as_string(values)
    kinds = _as_string(kinds)
    if len(values) != len(kinds):
        raise ValueError("values and kinds differ in length")
    n = len(values)
    kind_np = np.asarray(kinds.fill_null("").to_numpy(zero_copy_only=False), dtype=object)
    positions: list[np.ndarray] = []
    canon_parts: list[pa.Array] = []
    reason_parts: list[pa.Array] = []
    handled = np.zeros(n, dtype=bool)
    for kind in allowed:
        mask = kind_np == kind
        idx = np.flatnonzero(mask)
        handled |= mask
        if idx.size == 0:
            continue
        part = check_ids(values.take(pa.array(idx)), id_type=KIND_ID_TYPE[kind], today=today)
        positions.append(idx)
        canon_parts.append(part.canonical)
        reason_parts.append(part.reason)
    rest = np.flatnonzero(~handled)
    if rest.size:
        rest_values = values.take(pa.array(rest))
        positions.append(rest)
        canon_parts.append(pa.nulls(rest.size, pa.string()))
        reason_parts.append(
            pc.if_else(pc.is_null(rest_values), pa.scalar(None, pa.string()), HOLDER_KIND_REASON)
        )
    if not positions:
        empty = pa.array([], pa.string())
        return IdCheck(canonical=empty, reason=empty)
    order = np.concatenate(positions)
    # order[k] is the original row of concatenated element k; invert it to put rows back in place
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.arange(n, dtype=np.int64)
    take = pa.array(inverse)
    return IdCheck(
        canonical=pa.concat_arrays(canon_parts).take(take),
        reason=pa.concat_arrays(reason_parts).take(take),
    )


def check_division_codes(
    values: Any, *, current_only: bool = False, divisions: DivisionTable | None = None
) -> pa.Array:
    """Per value: is it a GB/T 2260 division code (six ASCII digits in the table)? Null stays null.

    Any code the dated table lists is accepted, historic ones included (a record keeps the code
    of its day), unless ``current_only``: then only codes still in use.
    """
    values = _as_string(values)
    known = _division_lookup(divisions or load_division_table(), current_only)
    shaped = np.asarray(
        pc.fill_null(pc.match_substring_regex(values, "^[0-9]{6}$"), False).to_numpy(
            zero_copy_only=False
        ),
        dtype=bool,
    )
    digits = pc.if_else(pa.array(shaped), values, "0").cast(pa.int32())
    codes = np.asarray(digits.to_numpy(zero_copy_only=False), dtype=np.int64)
    valid = shaped & known[codes]
    return pa.array(valid, pa.bool_(), mask=values.is_null().to_numpy(zero_copy_only=False))


@functools.lru_cache(maxsize=4)
def _division_lookup(table: DivisionTable, current_only: bool) -> np.ndarray:
    """A boolean array indexed by the six-digit code: accepted or not."""
    known = np.zeros(1_000_000, dtype=bool)
    for code in table:
        if not current_only or table.is_current(code):
            known[int(code)] = True
    return known


def _as_string(values: Any) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    elif not isinstance(values, pa.Array):
        values = pa.array(values, type=pa.string())
    if values.type != pa.string():
        values = values.cast(pa.string())
    return values


def _today(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def _valid_mask(reason: pa.Array, index: pd.Index) -> pd.Series:
    return pd.Series(reason.is_null().to_numpy(zero_copy_only=False), index=index)


class ColumnValuesResidentId(ColumnMapMetricProvider):
    """Metric: each value is a valid resident identity number (GB 11643, 15 or 18 digits)."""

    condition_metric_name = "column_values.onehub_resident_id"
    condition_value_keys = ("today",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, today: str | None = None, **kwargs: Any) -> pd.Series:
        check = check_ids(pa.array(column), id_type="resident_id", today=_today(today))
        return _valid_mask(check.reason, column.index)


class ColumnValuesCreditCode(ColumnMapMetricProvider):
    """Metric: each value is a valid unified social credit code (GB 32100)."""

    condition_metric_name = "column_values.onehub_credit_code"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        check = check_ids(pa.array(column), id_type="credit_code")
        return _valid_mask(check.reason, column.index)


class ColumnValuesDivisionCode(ColumnMapMetricProvider):
    """Metric: each value is a GB/T 2260 division code (any time, or in use today)."""

    condition_metric_name = "column_values.onehub_division_code"
    condition_value_keys = ("current_only",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, current_only: bool = False, **kwargs: Any) -> pd.Series:
        valid = check_division_codes(pa.array(column), current_only=bool(current_only))
        return pd.Series(valid.fill_null(True).to_numpy(zero_copy_only=False), index=column.index)


class ColumnPairValuesHolderId(ColumnPairMapMetricProvider):
    """Metric: column A holds a valid ID of the kind named in column B, row by row."""

    condition_metric_name = "column_pair_values.onehub_holder_id"
    condition_domain_keys = (
        "batch_id",
        "table",
        "column_A",
        "column_B",
        "row_condition",
        "condition_parser",
        "ignore_row_if",
    )
    condition_value_keys = ("kinds", "today")

    @column_pair_condition_partial(engine=PandasExecutionEngine)  # type: ignore[untyped-decorator]
    def _pandas(
        cls,
        column_A: pd.Series,
        column_B: pd.Series,
        kinds: Sequence[str] | None = None,
        today: str | None = None,
        **kwargs: Any,
    ) -> pd.Series:
        check = check_holder_ids(
            pa.array(column_A),
            pa.array(column_B),
            allowed=tuple(kinds or KIND_ID_TYPE),
            today=_today(today),
        )
        return _valid_mask(check.reason, column_A.index)


class ExpectColumnValuesToBeResidentId(ColumnMapExpectation):
    """Expect each non-null value to be a valid resident identity number."""

    today: str | None = None

    map_metric = "column_values.onehub_resident_id"
    success_keys: ClassVar[tuple[str, ...]] = ("mostly", "today")

    @classmethod
    @renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)
    def _prescriptive_renderer(
        cls,
        configuration: ExpectationConfiguration | None = None,
        result: Any = None,
        runtime_configuration: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[RenderedStringTemplateContent]:
        return _sentence(
            configuration,
            runtime_configuration,
            "$column values must be valid resident identity numbers (GB 11643: length, check "
            "character, birth date not after $today, GB/T 2260 division code).",
        )


class ExpectColumnValuesToBeCreditCode(ColumnMapExpectation):
    """Expect each non-null value to be a valid unified social credit code."""

    map_metric = "column_values.onehub_credit_code"
    success_keys: ClassVar[tuple[str, ...]] = ("mostly",)

    @classmethod
    @renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)
    def _prescriptive_renderer(
        cls,
        configuration: ExpectationConfiguration | None = None,
        result: Any = None,
        runtime_configuration: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[RenderedStringTemplateContent]:
        return _sentence(
            configuration,
            runtime_configuration,
            "$column values must be valid unified social credit codes (GB 32100: length, "
            "alphabet, check character).",
        )


class ExpectColumnValuesToBeDivisionCode(ColumnMapExpectation):
    """Expect each non-null value to be a GB/T 2260 division code (historic ones too, unless
    ``current_only``)."""

    current_only: bool = False

    map_metric = "column_values.onehub_division_code"
    success_keys: ClassVar[tuple[str, ...]] = ("mostly", "current_only")

    @classmethod
    @renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)
    def _prescriptive_renderer(
        cls,
        configuration: ExpectationConfiguration | None = None,
        result: Any = None,
        runtime_configuration: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[RenderedStringTemplateContent]:
        current = bool(configuration and configuration.kwargs.get("current_only"))
        which = "in use today" if current else "current or historic"
        return _sentence(
            configuration,
            runtime_configuration,
            f"$column values must be GB/T 2260 division codes ({which}).",
        )


class ExpectColumnPairValuesToBeHolderId(ColumnPairMapExpectation):
    """Expect column A to hold a valid ID of the holder kind in column B (A null: not checked)."""

    kinds: tuple[str, ...] = tuple(KIND_ID_TYPE)
    today: str | None = None
    ignore_row_if: Literal["both_values_are_missing", "either_value_is_missing", "neither"] = (
        "both_values_are_missing"
    )

    map_metric = "column_pair_values.onehub_holder_id"
    success_keys: ClassVar[tuple[str, ...]] = ("mostly", "kinds", "today", "ignore_row_if")

    @classmethod
    @renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)
    def _prescriptive_renderer(
        cls,
        configuration: ExpectationConfiguration | None = None,
        result: Any = None,
        runtime_configuration: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[RenderedStringTemplateContent]:
        return _sentence(
            configuration,
            runtime_configuration,
            "Values in $column_A must be valid ID numbers of the holder kind in $column_B "
            "(resident identity number or unified social credit code).",
        )


def _sentence(
    configuration: ExpectationConfiguration | None,
    runtime_configuration: dict[str, Any] | None,
    template: str,
) -> list[RenderedStringTemplateContent]:
    """One rendered sentence; its parameters are the configuration's kwargs (never data)."""
    if (runtime_configuration or {}).get("include_column_name") is False:
        # under its column's heading, the page leaves the column name out
        template = template.replace("$column values", "values")
    params = {
        k: v
        for k, v in (configuration.kwargs if configuration else {}).items()
        if k in ("column", "column_A", "column_B", "today")
    }
    params.setdefault("today", "today")
    return [
        RenderedStringTemplateContent(
            content_block_type="string_template",
            string_template={"template": template, "params": params},
        )
    ]
