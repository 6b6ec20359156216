"""Suites built from the catalog: one expectation per constraint, each telling its reason."""

from __future__ import annotations

import datetime as dt

import great_expectations as gx
import pytest

from catalog_schemas.catalog import shipped_catalog
from catalog_schemas.errors import CatalogError
from catalog_schemas.model import FieldSpec, LicenseType
from quality.suite import ID_FIELD_KEY, REASON_KEY, build_expectations, build_suite

LICENSE_TYPES = sorted(shipped_catalog().license_types)


def _expected_reasons(lt: LicenseType) -> set[str]:
    """Fixed reasons the catalog entry implies, derived field by field."""
    out: set[str] = set()
    for spec in lt.fields:
        if spec.required:
            out.add(f"not_null:{spec.name}")
        if spec.max_length is not None:
            out.add(f"max_length:{spec.name}")
        if spec.pattern is not None:
            out.add(f"pattern:{spec.name}")
        if spec.codes is not None:
            out.add(f"in_set:{spec.name}")
        if spec.min is not None or spec.max is not None:
            out.add(f"range:{spec.name}")
    out |= {f"date_order:{a}<={b}" for a, b in lt.date_order}
    out.add(f"duplicate:{lt.license_no_field}")
    return out


def test_all_five_shipped_types_are_covered() -> None:
    assert len(LICENSE_TYPES) == 5


@pytest.mark.parametrize("code", LICENSE_TYPES)
def test_suite_for_each_shipped_type(code: str) -> None:
    lt = shipped_catalog().license_type(code)
    suite = build_suite(lt, today=dt.date(2026, 11, 5))
    assert isinstance(suite, gx.ExpectationSuite)
    assert suite.name == f"onehub.{code}"
    metas = [e.meta or {} for e in suite.expectations]
    assert {m[REASON_KEY] for m in metas if REASON_KEY in m} == _expected_reasons(lt)
    assert sorted(m[ID_FIELD_KEY] for m in metas if ID_FIELD_KEY in m) == sorted(lt.id_fields)
    # every expectation says what a failing row is told, exactly once
    assert all((REASON_KEY in m) != (ID_FIELD_KEY in m) for m in metas)
    # it survives GX's own serialisation (what a file or cloud context would store)
    again = gx.ExpectationSuite(**suite.to_json_dict())  # type: ignore[arg-type]
    assert [(e.expectation_type, e.meta) for e in again.expectations] == [
        (e.expectation_type, e.meta) for e in suite.expectations
    ]


EXPECTATION_OF_TYPE = {
    "resident_id": "expect_column_values_to_be_resident_id",
    "credit_code": "expect_column_values_to_be_credit_code",
    "holder_id": "expect_column_pair_values_to_be_holder_id",
}


@pytest.mark.parametrize("code", LICENSE_TYPES)
def test_id_expectations_match_field_types(code: str) -> None:
    lt = shipped_catalog().license_type(code)
    found = {
        (e.meta or {})[ID_FIELD_KEY]: e.expectation_type
        for e in build_expectations(lt)
        if ID_FIELD_KEY in (e.meta or {})
    }
    assert found == {name: EXPECTATION_OF_TYPE[lt.field(name).type] for name in lt.id_fields}


def test_holder_id_pair_expectation_names_the_kind_field() -> None:
    lt = shipped_catalog().license_type("real_estate_title")
    (pair,) = [e for e in build_expectations(lt) if (e.meta or {}).get(ID_FIELD_KEY) == "owner_id"]
    kwargs = pair.configuration.kwargs
    assert (kwargs["column_A"], kwargs["column_B"]) == ("owner_id", "owner_kind")
    assert list(pair.kinds) == ["natural_person", "legal_person"]  # type: ignore[attr-defined]


def test_date_order_allows_open_end() -> None:
    lt = shipped_catalog().license_type("business_license")
    (order,) = [
        e
        for e in build_expectations(lt)
        if (e.meta or {}).get(REASON_KEY, "").startswith("date_order:")
    ]
    kwargs = order.configuration.kwargs
    assert kwargs["column_A"] == "operating_until" and kwargs["column_B"] == "established_date"
    assert kwargs["or_equal"] is True
    assert kwargs["ignore_row_if"] == "either_value_is_missing"


def test_holder_id_field_without_kind_field_is_a_catalog_error() -> None:
    lt = shipped_catalog().license_type("real_estate_title")
    stray = FieldSpec(
        name="agent_id", type="holder_id", label_zh="代理人证件号", label_en="Agent ID"
    )
    broken = lt.model_copy(update={"fields": (*lt.fields, stray)})
    with pytest.raises(CatalogError, match="agent_id"):
        build_suite(broken)
