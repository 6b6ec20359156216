"""Build the great_expectations suite of a license type from its catalog entry.

Every expectation carries, in its ``meta``, what a failing row is told: a fixed reason
(``{"onehub_reason": "not_null:party_a_name"}``) or, for identifier checks, the ID field whose
per-row reason code comes from the check itself (``{"onehub_id_field": "party_a_id"}``).

A source may add expectations in its YAML (``expectations:``, see
:class:`catalog_schemas.model.ExpectationSpec`); they follow the license type's own, carry
``onehub_source`` in their meta, and must not reuse one of its reasons.

Types are not GX expectations: the source mapping parses every typed field and gives a row that
fails ``bad_date:``/``bad_integer:``/``bad_decimal:``/``unknown_code:<field>``, and the gate
refuses a batch whose columns have the wrong Arrow type.
"""

from __future__ import annotations

import datetime as dt

import great_expectations as gx
from great_expectations.expectations.core.expect_column_pair_values_a_to_be_greater_than_b import (
    ExpectColumnPairValuesAToBeGreaterThanB,
)
from great_expectations.expectations.core.expect_column_value_lengths_to_be_between import (
    ExpectColumnValueLengthsToBeBetween,
)
from great_expectations.expectations.core.expect_column_values_to_be_between import (
    ExpectColumnValuesToBeBetween,
)
from great_expectations.expectations.core.expect_column_values_to_be_in_set import (
    ExpectColumnValuesToBeInSet,
)
from great_expectations.expectations.core.expect_column_values_to_be_unique import (
    ExpectColumnValuesToBeUnique,
)
from great_expectations.expectations.core.expect_column_values_to_match_regex import (
    ExpectColumnValuesToMatchRegex,
)
from great_expectations.expectations.core.expect_column_values_to_not_be_null import (
    ExpectColumnValuesToNotBeNull,
)
from great_expectations.expectations.expectation import Expectation

from catalog_schemas.errors import CatalogError
from catalog_schemas.model import ExpectationSpec, FieldSpec, LicenseType, Source
from quality.expectation import (
    ExpectColumnPairValuesToBeHolderId,
    ExpectColumnValuesToBeCreditCode,
    ExpectColumnValuesToBeDivisionCode,
    ExpectColumnValuesToBeResidentId,
)

#: ``meta`` key of an expectation's fixed reason code.
REASON_KEY = "onehub_reason"
#: ``meta`` key naming the ID field of an identifier expectation.
ID_FIELD_KEY = "onehub_id_field"
#: ``meta`` key naming the source that added the expectation.
SOURCE_KEY = "onehub_source"


def suite_name(license_type: LicenseType, source: Source | None = None) -> str:
    """The suite's name for ``license_type`` (with a source's additions: ``...+<source>``)."""
    if source is not None and source.expectations:
        return f"onehub.{license_type.code}+{source.name}"
    return f"onehub.{license_type.code}"


def build_expectations(
    license_type: LicenseType, *, today: dt.date | None = None, source: Source | None = None
) -> list[Expectation]:
    """Not-null, length, pattern, code set, range, ID, date-order and license-number-uniqueness
    expectations of ``license_type``, from its catalog entry, then ``source``'s own, in the order
    reasons are reported.
    """
    today_iso = today.isoformat() if today is not None else None
    kind_field = {h.id_field: (h.kind_field, h.kinds) for h in license_type.holders}
    out: list[Expectation] = []
    for spec in license_type.fields:
        out += _field_expectations(spec)
        meta = {ID_FIELD_KEY: spec.name}
        if spec.type == "resident_id":
            out.append(
                ExpectColumnValuesToBeResidentId(column=spec.name, today=today_iso, meta=meta)
            )
        elif spec.type == "credit_code":
            out.append(ExpectColumnValuesToBeCreditCode(column=spec.name, meta=meta))
        elif spec.type == "holder_id":
            kind, kinds = kind_field.get(spec.name, (None, ()))
            if kind is None:
                raise CatalogError(
                    f"{license_type.code}.{spec.name}: a holder_id field needs a holder "
                    "with a kind_field"
                )
            out.append(
                ExpectColumnPairValuesToBeHolderId(
                    column_A=spec.name,
                    column_B=kind,
                    kinds=tuple(kinds),
                    today=today_iso,
                    meta=meta,
                )
            )
    for earlier, later in license_type.date_order:
        # a null on either side is no order violation: a missing required date is reported by its
        # not-null check, and a null later date is an open end (e.g. an unlimited operating term)
        out.append(
            ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=later,
                column_B=earlier,
                or_equal=True,
                ignore_row_if="either_value_is_missing",
                meta={REASON_KEY: f"date_order:{earlier}<={later}"},
            )
        )
    no = license_type.license_no_field
    out.append(
        ExpectColumnValuesToBeUnique(
            column=unique_column(license_type), meta={REASON_KEY: f"duplicate:{no}"}
        )
    )
    if source is not None:
        out += _source_expectations(license_type, source, out)
    return out


def unique_column(license_type: LicenseType) -> str:
    """The frame column the license-number uniqueness runs on.

    A license number that is an ID number (a business license's credit code) is compared in its
    canonical form, which the gate adds to the frame under this name: two spellings of one
    code (``91 110000 600037341L``) are one record in the lake, so they are duplicates.
    """
    no = license_type.license_no_field
    if license_type.field(no).type in ("resident_id", "credit_code", "holder_id"):
        return f"{no} (canonical)"
    return no


def build_suite(
    license_type: LicenseType, *, today: dt.date | None = None, source: Source | None = None
) -> gx.ExpectationSuite:
    """The GX suite of ``license_type`` (and ``source``'s additions; see
    :func:`build_expectations`)."""
    # passed to the constructor, not add_expectation(), which needs an active data context
    return gx.ExpectationSuite(
        name=suite_name(license_type, source),
        expectations=build_expectations(license_type, today=today, source=source),
    )


def _source_expectations(
    license_type: LicenseType, source: Source, before: list[Expectation]
) -> list[Expectation]:
    """The source's extra expectations, checked against the license type's fields and reasons."""
    if source.license_type != license_type.code:
        raise CatalogError(
            f"source {source.name!r} feeds {source.license_type!r}, not {license_type.code!r}"
        )
    taken = {str((e.meta or {})[REASON_KEY]) for e in before if REASON_KEY in (e.meta or {})}
    out: list[Expectation] = []
    for i, spec in enumerate(source.expectations):
        where = f"{source.where('expectations')}: expectations.{i}"
        problem = spec.problem(license_type)
        if problem is not None:
            raise CatalogError(f"{where}: {problem}")
        if spec.reason in taken:
            raise CatalogError(
                f"{where}: reason {spec.reason!r} is already used; give the expectation a `name`"
            )
        taken.add(spec.reason)
        out.append(
            _source_expectation(spec, meta={REASON_KEY: spec.reason, SOURCE_KEY: source.name})
        )
    return out


def _source_expectation(spec: ExpectationSpec, *, meta: dict[str, str]) -> Expectation:
    column = spec.column or ""
    if spec.type == "not_null":
        return ExpectColumnValuesToNotBeNull(column=column, meta=meta)
    if spec.type == "pattern":
        return ExpectColumnValuesToMatchRegex(column=column, regex=spec.regex or "", meta=meta)
    if spec.type == "in_set":
        return ExpectColumnValuesToBeInSet(
            column=column, value_set=list(spec.values or ()), meta=meta
        )
    if spec.type == "range":
        return ExpectColumnValuesToBeBetween(
            column=column, min_value=spec.min, max_value=spec.max, meta=meta
        )
    if spec.type == "max_length":
        return ExpectColumnValueLengthsToBeBetween(
            column=column, max_value=spec.max_length, meta=meta
        )
    if spec.type == "unique":
        return ExpectColumnValuesToBeUnique(column=column, meta=meta)
    if spec.type == "division_code":
        return ExpectColumnValuesToBeDivisionCode(
            column=column, current_only=spec.current_only, meta=meta
        )
    earlier, later = spec.columns or ("", "")
    return ExpectColumnPairValuesAToBeGreaterThanB(
        column_A=later,
        column_B=earlier,
        or_equal=True,
        ignore_row_if="either_value_is_missing",
        meta=meta,
    )


def _field_expectations(spec: FieldSpec) -> list[Expectation]:
    name = spec.name
    out: list[Expectation] = []
    if spec.required:
        out.append(
            ExpectColumnValuesToNotBeNull(column=name, meta={REASON_KEY: f"not_null:{name}"})
        )
    if spec.max_length is not None:
        out.append(
            ExpectColumnValueLengthsToBeBetween(
                column=name, max_value=spec.max_length, meta={REASON_KEY: f"max_length:{name}"}
            )
        )
    if spec.pattern is not None:
        out.append(
            ExpectColumnValuesToMatchRegex(
                column=name, regex=spec.pattern, meta={REASON_KEY: f"pattern:{name}"}
            )
        )
    if spec.codes is not None:
        out.append(
            ExpectColumnValuesToBeInSet(
                column=name, value_set=sorted(spec.codes), meta={REASON_KEY: f"in_set:{name}"}
            )
        )
    if spec.min is not None or spec.max is not None:
        out.append(
            ExpectColumnValuesToBeBetween(
                column=name,
                min_value=spec.min,
                max_value=spec.max,
                meta={REASON_KEY: f"range:{name}"},
            )
        )
    return out
