"""The GB/T 2260 division table against the vendored gbt2260 vectors (INDEX.md §3)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from catalog_schemas.division import DivisionPeriod, DivisionTable, load_division_table

GBT2260 = Path(__file__).resolve().parents[1] / "vectors" / "gbt2260"


def _csv(name: str) -> list[dict[str, str]]:
    with (GBT2260 / name).open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _year(text: str) -> int | None:
    return int(text) if text else None


GUANGDONG_LOC = _csv("guangdong_44_stdnum_loc.csv")
GUANGDONG_NBS = _csv("guangdong_44_modood_2023.csv")
GUANGDONG_COUNTIES = [row for row in GUANGDONG_NBS if row["level"] == "county"]
CURRENT_GUANGDONG = {row["code"] for row in GUANGDONG_COUNTIES}
HISTORIC_GUANGDONG = sorted(
    {row["code"] for row in GUANGDONG_LOC if row["valid_to_year"]} - CURRENT_GUANGDONG
)


@pytest.fixture(scope="module")
def vector_table() -> DivisionTable:
    """The table parsed from the vendored copy of loc.dat (no supplement)."""
    return DivisionTable.parse_loc_dat((GBT2260 / "stdnum_cn_loc.dat").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def table() -> DivisionTable:
    return load_division_table()


def test_vector_counts_are_as_documented() -> None:
    assert len(GUANGDONG_COUNTIES) == 124
    assert len(GUANGDONG_LOC) == 403
    assert len({row["code"] for row in GUANGDONG_LOC}) == 395
    assert {"440102", "440524"} <= set(HISTORIC_GUANGDONG)


def test_parser_reproduces_the_guangdong_rows(vector_table: DivisionTable) -> None:
    expected = sorted(
        (row["code"], row["name"], _year(row["valid_from_year"]), _year(row["valid_to_year"]))
        for row in GUANGDONG_LOC
    )
    parsed = sorted(
        (code, p.name, p.valid_from, p.valid_to)
        for code in vector_table
        if code.startswith("44")
        for p in vector_table.periods(code)
    )
    assert parsed == expected


def test_installed_table_contains_the_vendored_one(
    table: DivisionTable, vector_table: DivisionTable
) -> None:
    # The shipped table is python-stdnum's loc.dat plus the supplement: an upgrade of
    # python-stdnum that changes the data shows up here for review.
    for code in vector_table:
        assert table.periods(code)[: len(vector_table.periods(code))] == vector_table.periods(code)


@pytest.mark.parametrize("row", GUANGDONG_COUNTIES, ids=lambda row: row["code"])
def test_every_current_guangdong_county_is_current_with_its_name(
    table: DivisionTable, row: dict[str, str]
) -> None:
    code = row["code"]
    assert table.exists(code)
    assert table.is_current(code)
    assert table.valid_in(code, 2023)
    assert table.last_year(code) is None
    assert table.name(code) == row["name"]
    assert table.name(code, 2023) == row["name"]


def test_guangdong_province_and_cities_exist(table: DivisionTable) -> None:
    assert table.province_exists("44")
    assert table.province_name("44") == "广东省"
    for row in GUANGDONG_NBS:
        if row["level"] == "city":
            assert table.exists(row["code"] + "00"), row


@pytest.mark.parametrize("code", HISTORIC_GUANGDONG)
def test_historic_guangdong_codes_are_valid_only_in_their_years(
    table: DivisionTable, code: str
) -> None:
    rows = [row for row in GUANGDONG_LOC if row["code"] == code]
    assert table.exists(code)
    assert not table.is_current(code)
    last = max(int(row["valid_to_year"]) for row in rows)
    assert table.last_year(code) == last
    assert not table.valid_in(code, last + 1)
    for row in rows:
        start, end = _year(row["valid_from_year"]), int(row["valid_to_year"])
        if start is not None and start > end:
            # loc.dat has 14 such inverted periods (e.g. 442401 梅州市 [1983-1982]): they are kept
            # as published and cover no year.
            assert not table.valid_in(code, start) or table.name(code, start) != row["name"]
            continue
        assert table.valid_in(code, end)
        assert table.name(code, end) == row["name"]
        if start is not None:
            assert table.valid_in(code, start)
            if not any(r["valid_to_year"] and int(r["valid_to_year"]) == start - 1 for r in rows):
                assert not table.valid_in(code, start - 1)


def test_named_historic_examples(table: DivisionTable) -> None:
    assert table.periods("440102") == (DivisionPeriod("东山区", 1983, 2005),)
    assert table.periods("440524") == (DivisionPeriod("潮阳县", 1983, 1993),)
    assert table.valid_in("440102", 1990)
    assert not table.valid_in("440102", 2006)
    assert not table.valid_in("440102", 1982)
    assert table.name("440102", 2010) is None


def test_a_reused_code_has_a_name_per_period(table: DivisionTable) -> None:
    assert table.name("120110", 1980) == "东郊区"
    assert table.name("120110", 1992) == "东丽区"
    assert table.name("120110") == "东丽区"
    assert table.is_current("120110")


def test_every_nbs_2023_county_code_is_current_except_statistical_zones(
    table: DivisionTable,
) -> None:
    areas = _csv("modood_areas.csv")
    assert len(areas) == 2978
    missing = [row["code"] for row in areas if not table.valid_in(row["code"], 2023)]
    # NBS gives development zones codes with a 7 in fifth place; they are not GB/T 2260 codes.
    assert missing
    assert all(code[4] == "7" for code in missing), missing
    assert not any(table.exists(code) for code in missing)


def test_supplement_fills_the_gaps_of_loc_dat(
    table: DivisionTable, vector_table: DivisionTable
) -> None:
    for code in ("330113", "330114", "620201"):
        assert not vector_table.exists(code)
        assert table.is_current(code)
    assert table.name("620201") == "嘉峪关市"


def test_provinces(table: DivisionTable) -> None:
    for row in _csv("modood_provinces.csv"):
        assert table.province_exists(row["code"]), row
    for prefix in ("71", "81", "82"):
        assert table.province_exists(prefix)
    for prefix in ("00", "01", "16", "83", "90", "99"):
        assert not table.province_exists(prefix)


def test_unknown_codes(table: DivisionTable) -> None:
    for code in ("990426", "111111", "235407", "44", "4401", "abcdef", ""):
        assert not table.exists(code)
        assert not table.valid_in(code, 2000)
        assert table.name(code) is None
        assert table.periods(code) == ()
    with pytest.raises(KeyError):
        table.last_year("990426")


def test_loader_is_cached() -> None:
    assert load_division_table() is load_division_table()


@pytest.mark.parametrize(
    "text",
    [
        '44 province="广东省"\n  01 county="x"\n',
        '  0101 county="x"\n',
        '44 province="广东省"\n  0101 county="x"\n  0101 county="y"\n',
        '44 province="广东省"\n  0101 county="[1983]x"\n',
        '44 province="广东省"\n  0101 county=""\n',
    ],
)
def test_malformed_loc_dat_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"loc\.dat line"):
        DivisionTable.parse_loc_dat(text)


def test_parse_dated_names() -> None:
    text = '# comment\n\n12 province="天津市"\n  0110 county="[-1991]东郊区,[1992-]东丽区"\n'
    parsed = DivisionTable.parse_loc_dat(text)
    assert parsed.periods("120110") == (
        DivisionPeriod("东郊区", None, 1991),
        DivisionPeriod("东丽区", 1992, None),
    )
    assert parsed.valid_in("120110", 1900)
    assert parsed.province_exists("12")
    assert not parsed.exists("120000")
