"""The quality gate on mapped batches with a known number of each kind of dirty row."""

from __future__ import annotations

import collections
import datetime as dt
import json
import unicodedata
from typing import Any

import pyarrow as pa
import pytest
from quality_data import (
    credit_code,
    legacy_ids,
    marriage_batch,
    resident_ids,
    valid_credit_codes,
    wrong_check_char,
)

from catalog_schemas.catalog import shipped_catalog
from catalog_schemas.holder import check_credit_codes, check_resident_ids
from quality import Gate, GateInputError, GateResult

TODAY = dt.date(2026, 11, 5)
D = dt.date


def _catalog_type(code: str) -> Any:
    return shipped_catalog().license_type(code)


def _by_ref(table: pa.Table) -> dict[str, dict[str, Any]]:
    return {row["_row_ref"]: row for row in table.to_pylist()}


def _assert_split(result: GateResult, rows_in: int, expected: dict[str, list[str]]) -> None:
    """Exactly the expected rows rejected with exactly their reasons; counts add up."""
    rejected = _by_ref(result.rejected)
    assert {ref: row["_reasons"] for ref, row in rejected.items()} == expected
    assert result.good.num_rows == rows_in - len(expected)
    assert set(_by_ref(result.good)).isdisjoint(expected)
    report = result.report
    assert report["rows_in"] == rows_in
    assert report["rows_good"] + report["rows_rejected"] == rows_in
    assert report["rows_rejected"] == len(expected)
    counts = collections.Counter(reason for reasons in expected.values() for reason in reasons)
    assert report["reasons"] == dict(counts)


# --- social insurance: every kind of dirty row in one batch


def _insurance_batch() -> tuple[pa.Table, dict[str, list[str]], dict[str, str]]:
    """40 rows; returns the batch, the expected reasons per rejected row_ref, and the expected
    canonical insured_id of selected good rows."""
    n = 40
    ids = [str(v) for v in resident_ids(n, seed=7)]
    rows: list[dict[str, Any]] = [
        {
            "_row_ref": f"r{i:02d}",
            "certificate_no": f"SI-{i:04d}",
            "insured_id": ids[i],
            "insured_name": f"参保人{i}",
            "insurance_scheme": "pension",
            "enrolled_since": D(2010, 1, 1),
            "months_paid": 120,
            "issue_date": D(2026, 1, 10),
            "valid_until": D(2026, 4, 10),
            "_errors": [],
        }
        for i in range(n)
    ]
    expected: dict[str, list[str]] = {}
    canonical: dict[str, str] = {}

    def dirty(i: int, reasons: list[str], **changes: Any) -> None:
        rows[i].update(changes)
        expected[rows[i]["_row_ref"]] = reasons

    # three wrong check characters
    for i in (1, 2, 3):
        dirty(i, ["id_check_char:insured_id"], insured_id=wrong_check_char(ids[i]))
    # two missing required fields
    dirty(4, ["not_null:insured_name"], insured_name=None)
    dirty(5, ["not_null:issue_date", "not_null:valid_until"], issue_date=None, valid_until=None)
    # two expiries before issue, one enrolment after issue
    dirty(6, ["date_order:issue_date<=valid_until"], valid_until=D(2026, 1, 9))
    dirty(7, ["date_order:issue_date<=valid_until"], valid_until=D(2025, 12, 31))
    dirty(8, ["date_order:enrolled_since<=issue_date"], enrolled_since=D(2026, 1, 11))
    # a duplicate pair and a duplicate triple: every member is rejected
    for i in (9, 10):
        dirty(i, ["duplicate:certificate_no"], certificate_no="SI-DUP-A")
    for i in (11, 12, 13):
        dirty(i, ["duplicate:certificate_no"], certificate_no="SI-DUP-B")
    # an unknown code the mapping already caught (it nulls the value), one it let through
    dirty(
        14,
        ["unknown_code:insurance_scheme", "not_null:insurance_scheme"],
        insurance_scheme=None,
        _errors=["unknown_code:insurance_scheme"],
    )
    dirty(15, ["in_set:insurance_scheme"], insurance_scheme="maternity")
    # a date the mapping could not parse, and a value out of range
    dirty(
        16,
        ["bad_date:enrolled_since", "not_null:enrolled_since"],
        enrolled_since=None,
        _errors=["bad_date:enrolled_since"],
    )
    dirty(17, ["range:months_paid"], months_paid=1201)
    # several faults in one row, reported in suite order after the mapping's
    dirty(
        18,
        [
            "bad_integer:months_paid",
            "id_check_char:insured_id",
            "not_null:insured_name",
            "date_order:issue_date<=valid_until",
        ],
        insured_id=wrong_check_char(ids[18]),
        insured_name=None,
        valid_until=D(2020, 1, 1),
        _errors=["bad_integer:months_paid"],
    )
    # ID structure faults and a birth date after `today`
    dirty(19, ["id_length:insured_id"], insured_id=ids[19][:17])
    dirty(20, ["id_charset:insured_id"], insured_id=ids[20][:10] + "A" + ids[20][11:])
    future = "44010620261201001"
    dirty(21, ["id_birth_date:insured_id"], insured_id=future + _check_char(future))
    dirty(22, ["max_length:insured_name"], insured_name="名" * 65)

    # good rows that need care: legacy 15-digit numbers, full-width input, lower-case x
    for i, (legacy, converted) in zip((30, 31), legacy_ids(), strict=False):
        rows[i]["insured_id"] = legacy
        canonical[rows[i]["_row_ref"]] = converted
    fullwidth = "".join(chr(ord(c) + 0xFEE0) for c in ids[32])
    rows[32]["insured_id"] = unicodedata.normalize("NFKC", fullwidth)  # what the mapping does
    canonical[rows[32]["_row_ref"]] = ids[32]
    rows[33]["insured_id"] = "44011320141005001x"
    canonical[rows[33]["_row_ref"]] = "44011320141005001X"
    # an open question answered: equal dates are in order
    rows[34]["valid_until"] = rows[34]["issue_date"]
    schema = pa.schema(
        [
            ("certificate_no", pa.string()),
            ("insured_id", pa.string()),
            ("insured_name", pa.string()),
            ("insurance_scheme", pa.string()),
            ("enrolled_since", pa.date32()),
            ("months_paid", pa.int64()),
            ("issue_date", pa.date32()),
            ("valid_until", pa.date32()),
            ("_row_ref", pa.string()),
            ("_errors", pa.list_(pa.string())),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema), expected, canonical


def _check_char(body17: str) -> str:
    from quality_data import ric_check_char

    return ric_check_char(body17)


def test_insurance_batch_splits_exactly_the_dirty_rows() -> None:
    table, expected, canonical = _insurance_batch()
    result = Gate(_catalog_type("social_insurance_certificate"), today=TODAY).check(table)
    _assert_split(result, table.num_rows, expected)
    good = _by_ref(result.good)
    for ref, value in canonical.items():
        assert good[ref]["insured_id"] == value
    original = _by_ref(table)
    for ref, row in good.items():
        if ref not in canonical:
            assert row["insured_id"] == original[ref]["insured_id"]
    assert len(good["r30"]["insured_id"]) == 18
    assert "_errors" not in result.good.column_names
    assert result.good.column_names == [c for c in table.column_names if c != "_errors"]
    # rejected rows keep every original column, raw values included
    assert result.rejected.column_names == [*table.column_names, "_reasons"]
    rejected = _by_ref(result.rejected)
    for ref, row in rejected.items():
        assert {k: v for k, v in row.items() if k != "_reasons"} == original[ref]


def test_report_counts_each_expectation_and_holds_no_values() -> None:
    table, expected, _ = _insurance_batch()
    result = Gate(_catalog_type("social_insurance_certificate"), today=TODAY).check(table)
    per_expectation = {e["reason"]: e for e in result.report["expectations"]}
    counts = collections.Counter(r for reasons in expected.values() for r in reasons)
    assert (
        per_expectation["duplicate:certificate_no"]["unexpected_count"]
        == counts["duplicate:certificate_no"]
    )
    assert per_expectation["not_null:insured_name"]["unexpected_count"] == 2
    assert per_expectation["not_null:insured_name"]["success"] is False
    assert per_expectation["not_null:certificate_no"]["success"] is True
    id_failures = sum(v for k, v in counts.items() if k.endswith(":insured_id"))
    assert per_expectation["id:insured_id"]["unexpected_count"] == id_failures
    assert (
        per_expectation["id:insured_id"]["expectation"] == "expect_column_values_to_be_resident_id"
    )
    text = json.dumps(result.report, ensure_ascii=False)
    for value in table.column("insured_id").to_pylist():
        assert value not in text
    for value in table.column("insured_name").to_pylist():
        if value is not None:
            assert value not in text
    assert set(result.report) == {
        "license_type",
        "suite",
        "rows_in",
        "rows_good",
        "rows_rejected",
        "reasons",
        "mapping",
        "expectations",
    }
    # the mapping's own reasons are counted apart from the expectations'
    assert result.report["mapping"] == {
        reason: count
        for reason, count in counts.items()
        if reason.split(":")[0] in ("bad_date", "bad_integer", "unknown_code")
    }
    for entry in result.report["expectations"]:
        assert entry["element_count"] == table.num_rows


def test_today_decides_future_birth_dates() -> None:
    body = "44010620261201001"
    table = pa.table(
        {
            "certificate_no": ["SI-1"],
            "insured_id": [body + _check_char(body)],
            "insured_name": ["甲"],
            "insurance_scheme": ["medical"],
            "enrolled_since": pa.array([D(2026, 12, 5)], pa.date32()),
            "months_paid": pa.array([1], pa.int64()),
            "issue_date": pa.array([D(2026, 12, 6)], pa.date32()),
            "valid_until": pa.array([D(2027, 1, 6)], pa.date32()),
            "_row_ref": ["a"],
        }
    )
    insurance = _catalog_type("social_insurance_certificate")
    assert Gate(insurance, today=TODAY).check(table).report["rows_rejected"] == 1
    assert Gate(insurance, today=D(2027, 1, 1)).check(table).report["rows_good"] == 1


def test_gate_is_reused_across_batches() -> None:
    gate = Gate(_catalog_type("social_insurance_certificate"), today=TODAY)
    table, expected, _ = _insurance_batch()
    first = gate.check(table)
    clean = gate.check(
        first.good.append_column("_errors", pa.nulls(first.good.num_rows, pa.list_(pa.string())))
    )
    _assert_split(first, table.num_rows, expected)
    _assert_split(clean, first.good.num_rows, {})


# --- marriage


def test_marriage_batch() -> None:
    table = marriage_batch(50, seed=3)
    rows = table.to_pylist()
    expected: dict[str, list[str]] = {}

    def dirty(i: int, reasons: list[str], **changes: Any) -> None:
        rows[i].update(changes)
        expected[rows[i]["_row_ref"]] = reasons

    dirty(0, ["pattern:certificate_no"], certificate_no="j440106_1")
    dirty(1, ["max_length:certificate_no"], certificate_no="J" * 33)
    dirty(2, ["id_check_char:party_b_id"], party_b_id=wrong_check_char(rows[2]["party_b_id"]))
    dirty(
        3,
        ["id_check_char:party_a_id", "id_check_char:party_b_id"],
        party_a_id=wrong_check_char(rows[3]["party_a_id"]),
        party_b_id=wrong_check_char(rows[3]["party_b_id"]),
    )
    dirty(4, ["not_null:party_a_id"], party_a_id=None)
    dirty(
        5,
        ["bad_date:registration_date", "not_null:registration_date"],
        registration_date=None,
        _errors=["bad_date:registration_date"],
    )
    dirty(6, ["duplicate:certificate_no"], certificate_no=rows[7]["certificate_no"])
    expected[rows[7]["_row_ref"]] = ["duplicate:certificate_no"]
    result = Gate(_catalog_type("marriage_certificate"), today=TODAY).check(
        pa.Table.from_pylist(rows, schema=table.schema)
    )
    _assert_split(result, 50, expected)


def test_chunked_and_other_typed_input_is_accepted() -> None:
    table = marriage_batch(20, seed=4)
    chunked = pa.concat_tables([table.slice(0, 7), table.slice(7)])
    names = chunked.column_names

    def retype(t: pa.Table, name: str, typ: pa.DataType) -> pa.Table:
        return t.set_column(names.index(name), name, t.column(name).cast(typ))

    other = retype(chunked, "party_a_name", pa.string_view())
    other = retype(other, "certificate_no", pa.large_string())
    other = retype(other, "registration_date", pa.date64())
    errors: list[list[str | None] | None] = [[] for _ in range(20)]
    errors[3] = None  # no list at all
    errors[4] = [None, "bad_code:x"]  # a null entry is no reason
    other = other.set_column(
        names.index("_errors"), "_errors", pa.array(errors, pa.list_(pa.string()))
    )
    result = Gate(_catalog_type("marriage_certificate"), today=TODAY).check(other)
    _assert_split(result, 20, {"4": ["bad_code:x"]})
    assert result.good.schema.field("party_a_name").type == pa.string()
    assert result.good.schema.field("registration_date").type == pa.date32()
    assert result.good.column("registration_date").to_pylist() == (
        table.filter(pa.array([i != 4 for i in range(20)])).column("registration_date").to_pylist()
    )


# --- business license: credit codes, open-ended and far-future dates, optional fields


def _business_rows(n: int) -> list[dict[str, Any]]:
    codes = valid_credit_codes()[:n]
    reps = [str(v) for v in resident_ids(n, seed=11)]
    return [
        {
            "_row_ref": f"b{i}",
            "credit_code": codes[i],
            "company_name": f"公司{i}",
            "company_type": "llc",
            "legal_rep_id": reps[i],
            "legal_rep_name": "王五",
            "address": "广州市天河区",
            "established_date": D(2015, 3, 1),
            "operating_until": D(2045, 2, 28),
        }
        for i in range(n)
    ]


def test_business_license_without_optional_column() -> None:
    rows = _business_rows(12)
    expected: dict[str, list[str]] = {}

    def dirty(i: int, reasons: list[str], **changes: Any) -> None:
        rows[i].update(changes)
        expected[rows[i]["_row_ref"]] = reasons

    rows[1]["operating_until"] = None  # 长期: an open-ended term is fine
    rows[2]["operating_until"] = D(9999, 12, 31)  # a "forever" sentinel beyond datetime64[ns]
    dirty(3, ["date_order:established_date<=operating_until"], operating_until=D(2015, 2, 28))
    dirty(
        4,
        ["date_order:established_date<=operating_until"],
        established_date=D(2300, 1, 1),
        operating_until=D(2020, 1, 1),
    )
    dirty(5, ["uscc_check_char:credit_code"], credit_code=wrong_check_char(rows[5]["credit_code"]))
    dirty(6, ["uscc_length:credit_code"], credit_code=rows[6]["credit_code"][:17])
    dirty(7, ["in_set:company_type"], company_type="cooperative")
    dirty(8, ["duplicate:credit_code"], credit_code=rows[9]["credit_code"])
    expected["b9"] = ["duplicate:credit_code"]
    rows[10]["credit_code"] = credit_code("91440101MA59ABCDE").lower()  # folded to canonical
    table = pa.Table.from_pylist(rows)
    assert "registered_capital" not in table.column_names
    result = Gate(_catalog_type("business_license"), today=TODAY).check(table)
    _assert_split(result, 12, expected)
    good = _by_ref(result.good)
    assert good["b10"]["credit_code"] == credit_code("91440101MA59ABCDE")
    assert good["b1"]["operating_until"] is None
    assert good["b2"]["operating_until"] == D(9999, 12, 31)
    assert "_errors" not in table.column_names and "_errors" not in result.rejected.column_names


def test_business_license_range_on_decimal() -> None:
    rows = _business_rows(3)
    for row, capital in zip(rows, (100.0, None, -0.5), strict=True):
        row["registered_capital"] = capital
    result = Gate(_catalog_type("business_license"), today=TODAY).check(pa.Table.from_pylist(rows))
    _assert_split(result, 3, {"b2": ["range:registered_capital"]})


# --- real estate: a holder of either kind


def test_real_estate_owner_of_either_kind() -> None:
    people = [str(v) for v in resident_ids(4, seed=21)]
    firms = valid_credit_codes()[10:14]
    legacy, converted = legacy_ids()[0]
    cases: list[tuple[str | None, str | None, dict[str, Any], list[str]]] = [
        ("natural_person", people[0], {}, []),
        ("legal_person", firms[0], {}, []),
        ("natural_person", legacy, {}, []),
        ("natural_person", firms[1], {}, ["<resident>"]),
        ("legal_person", people[1], {}, ["<credit>"]),
        (None, people[2], {}, ["not_null:owner_kind", "holder_kind:owner_id"]),
        ("foreigner", people[3], {}, ["in_set:owner_kind", "holder_kind:owner_id"]),
        ("legal_person", wrong_check_char(firms[2]), {}, ["uscc_check_char:owner_id"]),
        ("legal_person", firms[3], {"usage": "farm"}, ["in_set:usage"]),
        ("natural_person", None, {"area_m2": -1.0}, ["not_null:owner_id", "range:area_m2"]),
    ]
    rows: list[dict[str, Any]] = []
    expected: dict[str, list[str]] = {}
    for i, (kind, owner, changes, reasons) in enumerate(cases):
        row = {
            "_row_ref": f"t{i}",
            "certificate_no": f"粤(2026)广州市不动产权第{i:07d}号",
            "owner_kind": kind,
            "owner_id": owner,
            "owner_name": "业主",
            "location": "广州市天河区",
            "area_m2": 88.5,
            "usage": "residential",
            "issue_date": D(2026, 5, 1),
            **changes,
        }
        rows.append(row)
        # the reason for an ID of the wrong kind is whatever the checker of the row's kind says
        if reasons == ["<resident>"]:
            reasons = [f"{check_resident_ids([owner], today=TODAY).reason[0].as_py()}:owner_id"]
        elif reasons == ["<credit>"]:
            reasons = [f"{check_credit_codes([owner]).reason[0].as_py()}:owner_id"]
        if reasons:
            expected[row["_row_ref"]] = reasons
    result = Gate(_catalog_type("real_estate_title"), today=TODAY).check(pa.Table.from_pylist(rows))
    _assert_split(result, len(rows), expected)
    good = _by_ref(result.good)
    assert good["t0"]["owner_id"] == people[0]
    assert good["t1"]["owner_id"] == firms[0]
    assert good["t2"]["owner_id"] == converted


# --- shape of the input


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.append_column("surprise", pa.array(["x"] * t.num_rows)), "surprise"),
        (lambda t: t.drop_columns(["_row_ref"]), "_row_ref"),
        (
            lambda t: t.set_column(7, "_row_ref", pa.array(["same"] * t.num_rows)),
            "not unique",
        ),
        (
            lambda t: t.set_column(7, "_row_ref", pa.array([None] * t.num_rows, pa.string())),
            "null",
        ),
        (
            lambda t: t.set_column(5, "registration_date", pa.array(["2020-01-01"] * t.num_rows)),
            "registration_date",
        ),
        (
            lambda t: t.set_column(8, "_errors", pa.array(["oops"] * t.num_rows)),
            "_errors",
        ),
    ],
)
def test_malformed_batch_is_refused(change: Any, message: str) -> None:
    table = marriage_batch(3)
    assert table.column_names[5] == "registration_date" and table.column_names[7] == "_row_ref"
    with pytest.raises(GateInputError, match=message):
        Gate(_catalog_type("marriage_certificate"), today=TODAY).check(change(table))


def test_missing_required_column_rejects_every_row() -> None:
    table = marriage_batch(4).drop_columns(["registration_office"])
    result = Gate(_catalog_type("marriage_certificate"), today=TODAY).check(table)
    _assert_split(result, 4, {str(i): ["not_null:registration_office"] for i in range(4)})


def test_empty_batch() -> None:
    result = Gate(_catalog_type("marriage_certificate"), today=TODAY).check(
        marriage_batch(1).slice(0, 0)
    )
    assert (result.good.num_rows, result.rejected.num_rows) == (0, 0)
    assert result.report["rows_in"] == 0 and result.report["reasons"] == {}
    assert "_reasons" in result.rejected.column_names


def test_timing_script_runs() -> None:
    from gate_timing import measure

    seconds = measure(2_000, repeats=1)
    assert set(seconds) == {"gate", "frame", "gx", "id_column"}
    assert all(s > 0 for s in seconds.values())
