"""Expectations a source adds in its YAML, the division-code expectation, and GX's fingerprint."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import great_expectations as gx
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml
from great_expectations.execution_engine import pandas_execution_engine
from great_expectations.validator.v1_validator import Validator
from quality_data import marriage_batch

from catalog_schemas.catalog import default_catalog_dir, load_catalog, shipped_catalog
from catalog_schemas.division import load_division_table
from catalog_schemas.errors import CatalogError
from catalog_schemas.model import FieldSpec, LicenseType, Source
from quality import Gate
from quality.expectation import ExpectColumnValuesToBeDivisionCode, check_division_codes
from quality.gate import _RESULT_FORMAT
from quality.suite import REASON_KEY, SOURCE_KEY, build_suite

TODAY = dt.date(2026, 11, 5)


# --- catalog load ---------------------------------------------------------------------------------


def _catalog_with(tmp_path: Path, expectations: Any) -> Path:
    """A copy of the shipped catalog whose dca_marriage source adds ``expectations``."""
    folder = tmp_path / "catalog"
    shutil.copytree(default_catalog_dir(), folder)
    path = folder / "sources" / "dca_marriage.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["expectations"] = expectations
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("expectations", "message"),
    [
        ([{"type": "no_such_check", "column": "certificate_no"}], "expectations.0.type"),
        ([{"type": "not_null", "column": "certificate_no", "regex": "^J"}], "takes no regex"),
        ([{"type": "pattern", "column": "certificate_no"}], "needs regex"),
        ([{"type": "pattern", "column": "certificate_no", "regex": "("}], "regex"),
        ([{"type": "range", "column": "certificate_no"}], "min or max"),
        ([{"type": "not_null", "column": "no_such_field"}], "not fields this source maps"),
        ([{"type": "not_null", "column": "certificate_no", "typo": 1}], "typo"),
    ],
)
def test_a_bad_source_expectation_fails_the_catalog_naming_the_file(
    tmp_path: Path, expectations: Any, message: str
) -> None:
    folder = _catalog_with(tmp_path, expectations)
    with pytest.raises(CatalogError) as info:
        load_catalog(folder)
    text = str(info.value)
    assert str(folder / "sources" / "dca_marriage.yaml") in text
    assert message in text


def test_a_good_source_expectation_loads(tmp_path: Path) -> None:
    folder = _catalog_with(
        tmp_path,
        [
            {"type": "pattern", "column": "certificate_no", "regex": "^J44", "name": "dca_no"},
            {"type": "date_order", "columns": ["registration_date", "registration_date"]},
        ],
    )
    source = load_catalog(folder).source("dca_marriage")
    assert [e.reason for e in source.expectations] == [
        "dca_no:certificate_no",
        "date_order:registration_date<=registration_date",
    ]


def _source(**changes: Any) -> Source:
    data = shipped_catalog().source("dca_marriage").model_dump(by_alias=True)
    data.update(changes)
    return Source.model_validate(data)


def test_suite_refuses_a_check_that_does_not_fit_the_field() -> None:
    marriage = shipped_catalog().license_type("marriage_certificate")
    bad = _source(expectations=[{"type": "range", "column": "party_a_name", "min": 0}])
    with pytest.raises(CatalogError, match=r"expectations\.0: range applies to decimal/integer"):
        build_suite(marriage, source=bad)
    clash = _source(expectations=[{"type": "pattern", "column": "certificate_no", "regex": "^J"}])
    with pytest.raises(CatalogError, match="give the expectation a `name`"):
        build_suite(marriage, source=clash)
    other = shipped_catalog().license_type("degree_certificate")
    with pytest.raises(CatalogError, match="feeds"):
        build_suite(other, source=_source(expectations=[]))


def test_source_expectations_join_the_suite_after_the_types() -> None:
    marriage = shipped_catalog().license_type("marriage_certificate")
    source = _source(
        expectations=[
            {"type": "pattern", "column": "certificate_no", "regex": "^J44", "name": "prefix"},
            {"type": "in_set", "column": "registration_office", "values": ["广州市天河区民政局"]},
        ]
    )
    suite = build_suite(marriage, source=source)
    assert suite.name == "onehub.marriage_certificate+dca_marriage"
    metas = [e.meta or {} for e in suite.expectations]
    assert [m[REASON_KEY] for m in metas[-2:]] == [
        "prefix:certificate_no",
        "in_set:registration_office",
    ]
    assert all(m.get(SOURCE_KEY) == "dca_marriage" for m in metas[-2:])
    assert not any(SOURCE_KEY in m for m in metas[:-2])
    assert build_suite(marriage, source=_source()).name == "onehub.marriage_certificate"


# --- the gate with a source's expectations, division codes included ------------------------------


def _marriage_with_division() -> tuple[LicenseType, Source]:
    marriage = shipped_catalog().license_type("marriage_certificate")
    field = FieldSpec(
        name="office_division",
        type="string",
        label_zh="登记机关区划代码",
        label_en="Office division code",
    )
    license_type = marriage.model_copy(update={"fields": (*marriage.fields, field)})
    mapping = dict(shipped_catalog().source("dca_marriage").mapping)
    mapping["office_division"] = mapping["registration_office"].model_copy(
        update={"column": "office_code"}
    )
    source = _source(
        mapping={k: v.model_dump() for k, v in mapping.items()},
        expectations=[
            {"type": "division_code", "column": "office_division"},
            {"type": "not_null", "column": "office_division"},
            {"type": "pattern", "column": "certificate_no", "regex": "^J44", "name": "prefix"},
        ],
    )
    return license_type, source


def test_gate_applies_the_source_expectations() -> None:
    license_type, source = _marriage_with_division()
    table = marriage_batch(8, seed=2)
    codes = ["440106", "440102", "999999", "44010", None, "４40106", "440000", "440106"]
    table = table.append_column("office_division", pa.array(codes, pa.string()))
    numbers = table.column("certificate_no").to_pylist()
    numbers[7] = "K" + numbers[7][1:]
    table = table.set_column(0, "certificate_no", pa.array(numbers, pa.string()))
    result = Gate(license_type, today=TODAY, source=source).check(table)
    rejected = {r["_row_ref"]: r["_reasons"] for r in result.rejected.to_pylist()}
    assert rejected == {
        "2": ["division_code:office_division"],  # no such code
        "3": ["division_code:office_division"],  # five digits
        "4": ["not_null:office_division"],  # null: only the source's not-null speaks
        "5": ["division_code:office_division"],  # full-width: the mapping folds, not the gate
        "7": ["prefix:certificate_no"],
    }
    # 440102 东山区 ended in 2005: a historic code is accepted unless current_only
    assert "1" in set(result.good.column("_row_ref").to_pylist())
    entries = {e["reason"]: e for e in result.report["expectations"]}
    assert entries["division_code:office_division"]["unexpected_count"] == 3
    assert entries["division_code:office_division"]["missing_count"] == 1


def test_division_code_check_matches_the_table() -> None:
    table = load_division_table()
    rng = np.random.default_rng(4)
    codes = sorted(table)[::7] + [f"{v:06d}" for v in rng.integers(0, 1_000_000, 3000)]
    values = [*codes, None, "", "12345a", "1234567", " 440106"]
    any_time = check_division_codes(pa.array(values)).to_pylist()
    current = check_division_codes(pa.array(values), current_only=True).to_pylist()
    n = len(codes)
    assert any_time[:n] == [table.exists(c) for c in codes]
    assert current[:n] == [table.is_current(c) for c in codes]
    assert any_time[n:] == [None, False, False, False, False]
    assert 0 < sum(current[:n]) < sum(any_time[:n]) < n  # all three kinds are present


def test_division_code_expectation_in_gx() -> None:
    context = gx.get_context(mode="ephemeral")
    batch = (
        context.data_sources.add_pandas("d")
        .add_dataframe_asset("rows")
        .add_batch_definition_whole_dataframe("all")
        .get_batch(batch_parameters={"dataframe": pd.DataFrame({"c": ["440106", "440102", None]})})
    )
    fmt = {"result_format": "COMPLETE", "exclude_unexpected_values": True}
    lenient = batch.validate(ExpectColumnValuesToBeDivisionCode(column="c"), result_format=fmt)
    strict = batch.validate(
        ExpectColumnValuesToBeDivisionCode(column="c", current_only=True), result_format=fmt
    )
    assert lenient.success is True
    assert strict.result["unexpected_index_list"] == [1]


# --- GX's batch fingerprint ----------------------------------------------------------------------


def test_gate_turns_off_the_batch_fingerprint() -> None:
    gate = Gate(shipped_catalog().license_type("marriage_certificate"), today=TODAY)
    assert pandas_execution_engine.HASH_THRESHOLD == 0
    table = marriage_batch(50, seed=1)
    result = Validator(
        batch_definition=gate._batch_definition,
        batch_parameters={"dataframe": gate._frame(gate._conform(table))},
        result_format=_RESULT_FORMAT,
    ).validate_expectation_suite(gate.suite)
    assert "pandas_data_fingerprint" not in result.meta["batch_markers"]
    assert result.success is True
