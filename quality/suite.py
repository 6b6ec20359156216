"""Build the great_expectations suite of a license type from its catalog entry.

Every expectation carries, in its ``meta``, what a failing row is told: a fixed reason
(``{"onehub_reason": "not_null:party_a_name"}``) or, for identifier checks, the ID field whose
per-row reason code comes from the check itself (``{"onehub_id_field": "party_a_id"}``).
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
from catalog_schemas.model import FieldSpec, LicenseType
from quality.expectation import (
    ExpectColumnPairValuesToBeHolderId,
    ExpectColumnValuesToBeCreditCode,
    ExpectColumnValuesToBeResidentId,
)

#: ``meta`` key of an expectation's fixed reason code.
REASON_KEY = "onehub_reason"
#: ``meta`` key naming the ID field of an identifier expectation.
ID_FIELD_KEY = "onehub_id_field"


def suite_name(license_type: LicenseType) -> str:
    """The suite's name for ``license_type``."""
    return f"onehub.{license_type.code}"


def build_expectations(
    license_type: LicenseType, *, today: dt.date | None = None
) -> list[Expectation]:
    """Not-null, length, pattern, code set, range, ID, date-order and license-number-uniqueness
    expectations of ``license_type``, from its catalog entry, in the order reasons are reported.
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
    out.append(ExpectColumnValuesToBeUnique(column=no, meta={REASON_KEY: f"duplicate:{no}"}))
    return out


def build_suite(license_type: LicenseType, *, today: dt.date | None = None) -> gx.ExpectationSuite:
    """The GX suite of ``license_type`` (see :func:`build_expectations`)."""
    # passed to the constructor, not add_expectation(), which needs an active data context
    return gx.ExpectationSuite(
        name=suite_name(license_type),
        expectations=build_expectations(license_type, today=today),
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
