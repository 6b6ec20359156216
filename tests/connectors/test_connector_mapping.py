"""The source mapping: conversions, reason codes and the errors a bad mapping raises."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import pyarrow as pa
import pytest

from catalog_schemas.catalog import shipped_catalog
from catalog_schemas.errors import FatalError
from catalog_schemas.model import LicenseType, Source
from connectors import ROW_REF, apply_mapping, conversion
from connectors.cell import cell_text

INSURANCE = shipped_catalog().source("hrss_insurance")
INSURANCE_TYPE = shipped_catalog().license_type("social_insurance_certificate")
GOOD = {
    "zmbh": "ZM-001",
    "sfzh": "44010619900101001X",
    "xm": "张三",
    "xz": "110",
    "cbrq": "2010-01-01",
    "jfys": "72",
    "cjrq": "2016-03-23",
    "yxqz": "2016-06-23",
    "gxsj": "2016-03-23T10:00:00",
}


def batch(**columns: list[str | None]) -> pa.RecordBatch:
    """A batch of the hrss_insurance source: GOOD in every row, overridden by ``columns``."""
    rows = len(next(iter(columns.values()))) if columns else 1
    data: dict[str, list[str | None]] = {k: [v] * rows for k, v in GOOD.items()}
    data.update(columns)
    data[ROW_REF] = [f"pk={i}" for i in range(rows)]
    return pa.RecordBatch.from_pydict(data, schema=pa.schema([(k, pa.string()) for k in data]))


def mapped(
    b: pa.RecordBatch, src: Source = INSURANCE, lt: LicenseType = INSURANCE_TYPE
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = apply_mapping(b, source=src, license_type=lt).to_pylist()
    return rows


def with_mapping(src: Source, **mapping: dict[str, Any]) -> Source:
    """``src`` with some of its mapping entries replaced (validated like catalog YAML)."""
    data = src.model_dump(by_alias=True, exclude_none=True)
    data["mapping"].update(mapping)
    return Source.model_validate(data)


def test_a_good_row_maps_to_typed_fields_without_errors() -> None:
    table = apply_mapping(batch(), source=INSURANCE, license_type=INSURANCE_TYPE)

    assert table.schema.names == [
        "certificate_no",
        "insured_id",
        "insured_name",
        "insurance_scheme",
        "enrolled_since",
        "months_paid",
        "issue_date",
        "valid_until",
        ROW_REF,
        "_errors",
    ]
    assert table.schema.field("enrolled_since").type == pa.date32()
    assert table.schema.field("months_paid").type == pa.int64()
    assert table.schema.field("_errors").type == pa.list_(pa.string())
    assert table.to_pylist() == [
        {
            "certificate_no": "ZM-001",
            "insured_id": "44010619900101001X",
            "insured_name": "张三",
            "insurance_scheme": "pension",
            "enrolled_since": dt.date(2010, 1, 1),
            "months_paid": 72,
            "issue_date": dt.date(2016, 3, 23),
            "valid_until": dt.date(2016, 6, 23),
            ROW_REF: "pk=0",
            "_errors": [],
        }
    ]


@pytest.mark.parametrize(
    "text",
    [
        "2016-03-23",
        "20160323",
        "2016/3/23",
        "2016-3-23",
        "2016/03/23",
        "2016年3月23日",
        "2016年03月23日",
        "2016-03-23T10:11:12",
        "2016-03-23T10:11:12.123456+08:00",
        "2016-03-23T10:11:12Z",
        "2016-03-23 10:11:12.000000",
        " 2016-03-23 ",
    ],
)
def test_every_date_form_is_read(text: str) -> None:
    assert mapped(batch(cjrq=[text]))[0]["issue_date"] == dt.date(2016, 3, 23)


@pytest.mark.parametrize(
    "text",
    ["2016-02-30", "2015-02-29", "20161301", "2016-00-10", "2016-3", "23/03/2016", "2016032", "x"],
)
def test_a_bad_date_becomes_null_with_a_reason(text: str) -> None:
    row = mapped(batch(cjrq=[text]))[0]
    assert row["issue_date"] is None
    assert row["_errors"] == ["bad_date:issue_date"]


def test_a_leap_day_is_a_date() -> None:
    assert mapped(batch(cjrq=["2016-02-29"]))[0]["issue_date"] == dt.date(2016, 2, 29)


def test_an_explicit_date_format() -> None:
    src = with_mapping(
        INSURANCE, issue_date={"column": "cjrq", "convert": ["date"], "date_format": "%d/%m/%Y"}
    )
    rows = mapped(batch(cjrq=["23/03/2016", "31/02/2016", "2016-03-23"]), src)
    assert [r["issue_date"] for r in rows] == [dt.date(2016, 3, 23), None, None]
    assert [r["_errors"] for r in rows] == [[], ["bad_date:issue_date"], ["bad_date:issue_date"]]


def test_an_unsupported_date_format_directive_is_fatal() -> None:
    src = with_mapping(
        INSURANCE, issue_date={"column": "cjrq", "convert": ["date"], "date_format": "%j/%Y"}
    )
    with pytest.raises(FatalError, match="%j"):
        mapped(batch(), src)


def test_codes_map_and_an_unknown_code_is_reported() -> None:
    rows = mapped(batch(xz=["110", "310", "210", "410", "999", None]))
    assert [r["insurance_scheme"] for r in rows] == [
        "pension",
        "medical",
        "unemployment",
        "work_injury",
        None,
        None,
    ]
    assert [r["_errors"] for r in rows] == [[], [], [], [], ["unknown_code:insurance_scheme"], []]


def test_a_code_field_without_a_code_map_must_hold_catalog_codes() -> None:
    src = with_mapping(INSURANCE, insurance_scheme={"column": "xz", "convert": ["trim"]})
    rows = mapped(batch(xz=["medical", " pension ", "310"]), src)
    assert [r["insurance_scheme"] for r in rows] == ["medical", "pension", None]
    assert rows[2]["_errors"] == ["unknown_code:insurance_scheme"]


def test_halfwidth_upper_and_trim_normalise_an_id_number() -> None:
    rows = mapped(
        batch(
            sfzh=[
                "\u3000４４０１０６１９９００１０１００１ｘ ",
                "ＡＢＣ－１２３",
                "44010619900101001x",
            ]
        )
    )
    assert [r["insured_id"] for r in rows] == [
        "44010619900101001X",
        "ABC-123",
        "44010619900101001X",
    ]
    assert all(r["_errors"] == [] for r in rows)


def test_blank_values_become_null_without_an_error() -> None:
    rows = mapped(batch(xm=["", "   ", "\u3000"], cjrq=["", " ", None], jfys=["", "", ""]))
    assert [(r["insured_name"], r["issue_date"], r["months_paid"]) for r in rows] == [
        (None, None, None)
    ] * 3
    assert all(r["_errors"] == [] for r in rows)


def test_integers_and_their_failures() -> None:
    rows = mapped(batch(jfys=["12", "+7", "12.0", " 3 ", "12.5", "abc", "99999999999999999999"]))
    assert [r["months_paid"] for r in rows] == [12, 7, 12, 3, None, None, None]
    assert [r["_errors"] for r in rows][4:] == [["bad_integer:months_paid"]] * 3


def test_decimals_and_their_failures() -> None:
    title = shipped_catalog().source("dlr_title")
    lt = shipped_catalog().license_type("real_estate_title")
    data = {
        "bdcqzh": "C1",
        "qlrlx": "1",
        "qlrzjh": "44010619900101001X",
        "qlr": "王五",
        "zl": "广州",
        "yt": "10",
        "dbsj": "2016-03-23",
        "last_modified": "2016-03-23T10:00:00",
    }
    values = ["88.5", "1,234.50", "1e3", ".5", "-2", "abc", "1e999", "1,23"]
    b = pa.RecordBatch.from_pydict(
        {
            **{k: [v] * len(values) for k, v in data.items()},
            "mj": values,
            ROW_REF: ["r"] * len(values),
        }
    )
    rows = mapped(b, title, lt)
    assert [r["area_m2"] for r in rows] == [88.5, 1234.5, 1000.0, 0.5, -2.0, None, None, None]
    assert [r["_errors"] for r in rows][5:] == [["bad_decimal:area_m2"]] * 3


def test_a_const_fills_every_row() -> None:
    src = with_mapping(INSURANCE, insured_name={"const": "匿名"})
    assert [r["insured_name"] for r in mapped(batch(xm=["a", "b"]), src)] == ["匿名", "匿名"]


def test_several_failures_in_one_row_are_all_listed() -> None:
    row = mapped(batch(xz=["999"], cbrq=["bad"], jfys=["x"], gxsj=[None]))[0]
    assert row["_errors"] == [
        "unknown_code:insurance_scheme",
        "bad_date:enrolled_since",
        "bad_integer:months_paid",
        "missing_watermark:gxsj",
    ]


def test_a_mapping_naming_a_missing_column_is_fatal() -> None:
    b = batch().drop_columns(["xm"])
    with pytest.raises(FatalError, match=r"hrss_insurance.*'xm'") as caught:
        mapped(b)
    assert caught.value.code == "mapping_column_missing"


def test_a_batch_for_another_license_type_is_refused() -> None:
    with pytest.raises(FatalError, match="marriage_certificate"):
        apply_mapping(
            batch(),
            source=INSURANCE,
            license_type=shipped_catalog().license_type("marriage_certificate"),
        )


def test_an_empty_batch_maps_to_an_empty_table_of_the_same_schema() -> None:
    empty = batch().slice(0, 0)
    table = apply_mapping(empty, source=INSURANCE, license_type=INSURANCE_TYPE)
    assert table.num_rows == 0
    assert (
        table.schema == apply_mapping(batch(), source=INSURANCE, license_type=INSURANCE_TYPE).schema
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, None),
        ("文本", "文本"),
        (True, "1"),
        (42, "42"),
        (88.5, "88.5"),
        (100.0, "100"),
        (decimal.Decimal("88.50"), "88.5"),
        (decimal.Decimal("100.00"), "100"),
        (decimal.Decimal("1E+2"), "100"),
        (dt.date(2016, 3, 23), "2016-03-23"),
        (dt.datetime(2016, 3, 23, 10, 0), "2016-03-23T10:00:00"),
        (b"\x01\xff", "01ff"),
        ({"b": 1, "a": "甲"}, '{"a":"甲","b":1}'),
    ],
)
def test_cell_text_is_one_form_per_value(value: Any, text: str | None) -> None:
    assert cell_text(value) == text


def test_halfwidth_covers_the_whole_fullwidth_ascii_range_and_the_ideographic_space() -> None:
    fullwidth = "".join(chr(c) for c in range(0xFF01, 0xFF5F)) + "\u3000"
    ascii_ = "".join(chr(c) for c in range(0x21, 0x7F)) + " "
    values = pa.array(["ｘ", fullwidth, "中文\u3000Ａ", None, "plain", "１"]).slice(1, 4)
    assert conversion.halfwidth(values).to_pylist() == [ascii_, "中文 A", None, "plain"]
