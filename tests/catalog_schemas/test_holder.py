"""Holder identifiers: the cn_ric and cn_uscc vectors, the region policy, column checks, keys."""

from __future__ import annotations

import csv
import hashlib
import hmac
import re
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog_schemas.division import DivisionTable, load_division_table
from catalog_schemas.errors import InvalidIdentifierError, RowRejectedError
from catalog_schemas.holder import (
    CREDIT_CODE_REASONS,
    RESIDENT_ID_REASONS,
    ColumnCheck,
    check_credit_codes,
    check_holder_ids,
    check_resident_ids,
    holder_key,
    holder_keys,
    mask_id,
    normalize_credit_code,
    normalize_resident_id,
    validate_credit_code,
    validate_holder_id,
    validate_resident_id,
)

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
TODAY = date(2026, 11, 27)
HUB_KEY = bytes(range(32))


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


RIC = _csv(VECTORS / "cn_ric" / "ric_cases.csv")
USCC = _csv(VECTORS / "cn_uscc" / "uscc_cases.csv")
GUANGDONG_LOC = _csv(VECTORS / "gbt2260" / "guangdong_44_stdnum_loc.csv")
GUANGDONG_CURRENT = {
    row["code"]
    for row in _csv(VECTORS / "gbt2260" / "guangdong_44_modood_2023.csv")
    if row["level"] == "county"
}


def _rows(category: str) -> list[dict[str, str]]:
    return [row for row in RIC if row["category"] == category]


# --- independent oracles -------------------------------------------------------------------------
_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]  # GB 11643 Annex, MOD 11-2


def check_char(body17: str) -> str:
    """GB 11643 check character, written out independently of the code under test."""
    value = (12 - sum(int(d) * w for d, w in zip(body17, _WEIGHTS, strict=True)) % 11) % 11
    return "X" if value == 10 else str(value)


def make_id(code: str, born: str, seq: str = "001") -> str:
    body = code + born + seq
    return body + check_char(body)


def _loc_dat_oracle() -> tuple[set[str], dict[str, list[int | None]]]:
    """Provinces and, per code, the end year of each period, read straight from loc.dat."""
    provinces: set[str] = set()
    ends: dict[str, list[int | None]] = {}
    province = ""
    text = (VECTORS / "gbt2260" / "stdnum_cn_loc.dat").read_text(encoding="utf-8")
    for line in text.splitlines():
        if m := re.match(r"^(\d\d) province=", line):
            province = m.group(1)
            provinces.add(province)
        elif m := re.match(r'^  (\d{4}) county="(.*)"$', line):
            periods = [re.match(r"\[\d*-(\d*)\]", part) for part in m.group(2).split(",")]
            ends[province + m.group(1)] = [
                int(p.group(1)) if p is not None and p.group(1) else None for p in periods
            ]
    return provinces, ends


PROVINCES, CODE_ENDS = _loc_dat_oracle()


def policy_accepts(canonical: str, *, legacy: bool) -> bool:
    """The region policy of docs/identifiers.md, restated over the raw loc.dat."""
    code, born = canonical[:6], int(canonical[6:10])
    if not legacy and code[0] == "9":
        return code[1:3] in PROVINCES
    if code in {"810000", "820000", "830000"}:
        return True
    if code[:2] not in PROVINCES or code not in CODE_ENDS:
        return False
    ends = CODE_ENDS[code]
    return None in ends or max(e for e in ends if e is not None) >= born


def outcome(value: str) -> str:
    """Canonical form, or ``!reason``."""
    try:
        return validate_resident_id(value, today=TODAY)
    except InvalidIdentifierError as exc:
        return "!" + exc.reason


def column_outcomes(check: ColumnCheck) -> list[str | None]:
    canonical = check.canonical.to_pylist()
    reason = check.reason.to_pylist()
    return [
        c if c is not None else (None if r is None else "!" + r)
        for c, r in zip(canonical, reason, strict=True)
    ]


# --- cn_ric vectors (INDEX.md §1) ----------------------------------------------------------------
def test_vector_categories_are_as_documented() -> None:
    counts = {c: len(_rows(c)) for c in {row["category"] for row in RIC}}
    assert counts == {
        "structure": 31,
        "core": 13,
        "region": 3,
        "region-temporal": 2,
        "region-lenient": 21,
        "special-prefix": 6,
        "conversion-only": 1,
    }


def _structure_reason(row: dict[str, str]) -> str:
    folded = re.sub(r"[ \-]", "", row["value"]).upper()
    if len(folded) not in (15, 18):
        return "id_length"
    if not re.fullmatch(r"[0-9]{17}[0-9X]" if len(folded) == 18 else r"[0-9]{15}", folded):
        return "id_charset"
    if len(folded) == 18 and row["mod11_2_ok"] == "false":
        return "id_check_char"
    assert row["date_ok"] == "false", row
    return "id_birth_date"


@pytest.mark.parametrize("row", _rows("structure"), ids=lambda row: row["value"])
def test_structure_rows_are_rejected_for_the_right_reason(row: dict[str, str]) -> None:
    with pytest.raises(InvalidIdentifierError) as info:
        validate_resident_id(row["value"], today=TODAY)
    assert info.value.reason == _structure_reason(row)


@pytest.mark.parametrize("row", _rows("core"), ids=lambda row: row["value"])
def test_core_rows_are_accepted(row: dict[str, str]) -> None:
    canonical = validate_resident_id(row["value"], today=TODAY)
    if row["normalized18"]:
        assert canonical == row["normalized18"]
    folded = row["value"].upper()
    if len(folded) == 15:
        assert canonical[:17] == folded[:6] + "19" + folded[6:]
    assert canonical[17] == check_char(canonical[:17])


@pytest.mark.parametrize(
    "row", [r for r in RIC if len(r["value"]) == 15 and r["normalized18"]], ids=lambda r: r["value"]
)
def test_legacy_15_digit_conversion_matches_upstream(row: dict[str, str]) -> None:
    assert normalize_resident_id(row["value"]) == row["normalized18"]


def test_the_three_documented_conversions() -> None:
    assert normalize_resident_id("610104620927690") == "610104196209276908"
    assert normalize_resident_id("150102880730303") == "150102198807303035"
    assert normalize_resident_id("330102200403064") == "33010219200403064X"


@pytest.mark.parametrize("row", _rows("region"), ids=lambda row: row["value"])
def test_region_rows_are_rejected(row: dict[str, str]) -> None:
    with pytest.raises(InvalidIdentifierError) as info:
        validate_resident_id(row["value"], today=TODAY)
    assert info.value.reason == "id_region"


# The policy table of docs/identifiers.md, for the rows where the upstream verdict depends on it.
REGION_TEMPORAL_EXPECTED = {
    "110111198012010078": True,  # 110111 created 1986, born 1980: assigned later, accepted
    "110201199312010077": False,  # 110201 ended 1982, born 1993: cannot have been assigned
}
REGION_LENIENT_REJECTED = {
    "111111111111111",  # 111111 is no division code (a hutool leniency)
    "235407195106112745",  # 235407 is no division code (validator.js checks the province only)
    "370620199505100123",  # 370620 ended 1987, born 1995
}


@pytest.mark.parametrize(
    "row", _rows("region-temporal") + _rows("region-lenient"), ids=lambda row: row["value"]
)
def test_region_dependent_rows_follow_the_policy(row: dict[str, str]) -> None:
    value = row["value"]
    legacy = len(value) == 15
    expected = policy_accepts(normalize_resident_id(value), legacy=legacy)
    if row["category"] == "region-temporal":
        assert expected is REGION_TEMPORAL_EXPECTED[value]
    else:
        assert expected is (value not in REGION_LENIENT_REJECTED)
    result = outcome(value)
    if expected:
        assert not result.startswith("!"), result
        if row["normalized18"]:
            assert result == row["normalized18"]
    else:
        assert result == "!id_region"


@pytest.mark.parametrize("row", _rows("special-prefix"), ids=lambda row: row["value"])
def test_special_prefix_rows_are_accepted(row: dict[str, str]) -> None:
    assert validate_resident_id(row["value"], today=TODAY) == row["normalized18"]


def test_vector_column_agrees_with_scalar() -> None:
    values = [row["value"] for row in RIC]
    assert column_outcomes(check_resident_ids(values, today=TODAY)) == [outcome(v) for v in values]


def test_messages_never_contain_the_number() -> None:
    for row in RIC:
        try:
            validate_resident_id(row["value"], today=TODAY)
        except InvalidIdentifierError as exc:
            text = str(exc)
            digits = re.sub(r"\D", "", row["value"])
            assert all(digits[i : i + 6] not in text for i in range(len(digits) - 5)), text
            assert exc.code == exc.reason
            assert isinstance(exc, RowRejectedError)


# --- normalisation -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw",
    [
        "11010519491231002X",
        "11010519491231002x",
        "  110105 19491231 002X\t\n",
        "110105-1949-1231-002X",
        "１１０１０５１９４９１２３１００２Ｘ",
        "１１０１０５\u30001949１２３１－００２ｘ",
    ],
)
def test_folding(raw: str) -> None:
    assert normalize_resident_id(raw) == "11010519491231002X"
    assert validate_resident_id(raw, today=TODAY) == "11010519491231002X"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "id_length"),
        ("11010519491231002", "id_length"),
        ("110105\u00a019491231002X", "id_length"),  # no-break space is not a separator
        ("11010519491231002X0", "id_length"),
        ("1101051949123100X2", "id_charset"),
        ("11010519491231\u0663\u0660\u0662X", "id_charset"),  # Arabic-Indic digits
        ("1101051949123100²X", "id_charset"),
        ("11010519491231002Y", "id_charset"),
        ("11010549123100X", "id_charset"),  # a legacy number has no check character
        ("110105194912310021", "id_check_char"),
    ],
)
def test_reasons(raw: str, reason: str) -> None:
    assert outcome(raw) == "!" + reason
    assert column_outcomes(check_resident_ids([raw], today=TODAY)) == ["!" + reason]


def test_normalize_does_not_check_the_check_character() -> None:
    assert normalize_resident_id("110105194912310021") == "110105194912310021"
    with pytest.raises(InvalidIdentifierError, match="check character"):
        validate_resident_id("110105194912310021", today=TODAY)


def test_non_str_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        validate_resident_id(11010519491231002, today=TODAY)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        check_resident_ids([11010519491231002], today=TODAY)
    with pytest.raises(TypeError):
        check_resident_ids(pa.array([1, 2]), today=TODAY)


# --- birth dates ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("born", "ok"),
    [
        ("20000229", True),
        ("19000229", False),
        ("19960229", True),
        ("19970229", False),
        ("19991131", False),
        ("19991301", False),
        ("19990001", False),
        ("19990100", False),
        ("18000101", True),
        ("17991231", False),
        (TODAY.strftime("%Y%m%d"), True),
        ((TODAY + timedelta(days=1)).strftime("%Y%m%d"), False),
    ],
)
def test_birth_dates(born: str, ok: bool) -> None:
    value = make_id("110105", born)
    expected = value if ok else "!id_birth_date"
    assert outcome(value) == expected
    assert column_outcomes(check_resident_ids([value], today=TODAY)) == [expected]


def test_legacy_dates_are_in_the_1900s() -> None:
    assert normalize_resident_id("110105000229001")[6:14] == "19000229"
    assert outcome("110105000229001") == "!id_birth_date"  # 1900 was not a leap year
    assert outcome("110105960229001") == normalize_resident_id("110105960229001")


def test_today_defaults_to_the_real_date() -> None:
    tomorrow = make_id("110105", (date.today() + timedelta(days=1)).strftime("%Y%m%d"))
    yesterday = make_id("110105", (date.today() - timedelta(days=1)).strftime("%Y%m%d"))
    with pytest.raises(InvalidIdentifierError, match="birth date"):
        validate_resident_id(tomorrow)
    assert validate_resident_id(yesterday) == yesterday
    assert check_resident_ids([tomorrow, yesterday]).reason.to_pylist() == ["id_birth_date", None]


# --- region policy -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "born", "ok"),
    [
        ("440113", "19500101", True),  # 番禺区 code from 2000: a number given after birth
        ("440102", "19700101", True),  # 东山区 1983-2005
        ("440102", "20051231", True),
        ("440102", "20060101", False),
        ("810000", "19000101", True),  # residence permits: any birth year
        ("820000", "19500101", True),
        ("830000", "20200101", True),
        ("810001", "19900101", False),
        ("830100", "19900101", False),
        ("710000", "19900101", True),  # 台湾省 is in GB/T 2260
        ("932682", "19850101", True),  # foreigner permanent residence, accepted in 江苏 (32)
        ("944156", "19850101", True),
        ("916156", "19850101", False),  # no province 16
        ("990426", "19850101", False),
        ("160101", "19900101", False),
        ("010101", "19900101", False),
        ("440000", "19900101", True),  # province and city summary codes exist in the table
        ("440100", "19900101", True),
        ("620201", "19900101", True),  # 嘉峪关市: the supplement (stdnum raises KeyError)
        ("330113", "20220101", True),  # 临平区 (2021): the supplement
    ],
)
def test_region_policy(code: str, born: str, ok: bool) -> None:
    value = make_id(code, born)
    expected = value if ok else "!id_region"
    assert outcome(value) == expected
    assert column_outcomes(check_resident_ids([value], today=TODAY)) == [expected]


def test_legacy_numbers_never_use_the_permanent_residence_format() -> None:
    legacy = "932682850101001"
    assert normalize_resident_id(legacy).startswith("93268219850101")
    assert outcome(legacy) == "!id_region"
    assert column_outcomes(check_resident_ids([legacy], today=TODAY)) == ["!id_region"]


HISTORIC_GUANGDONG = sorted(
    {row["code"] for row in GUANGDONG_LOC if row["valid_to_year"]} - GUANGDONG_CURRENT
)


@pytest.mark.parametrize("code", HISTORIC_GUANGDONG)
def test_historic_guangdong_codes(code: str) -> None:
    last = max(int(r["valid_to_year"]) for r in GUANGDONG_LOC if r["code"] == code)
    values = [
        make_id(code, f"{last}0101"),
        make_id(code, "19500101"),
        make_id(code, f"{last + 1}0101"),
    ]
    assert [outcome(v) for v in values] == [values[0], values[1], "!id_region"]
    assert column_outcomes(check_resident_ids(values, today=TODAY)) == [
        values[0],
        values[1],
        "!id_region",
    ]


def test_current_guangdong_codes_accept_any_birth_year() -> None:
    values = [
        make_id(code, born)
        for code in sorted(GUANGDONG_CURRENT)
        for born in ("19300101", "20250101")
    ]
    assert [outcome(v) for v in values] == values
    assert column_outcomes(check_resident_ids(values, today=TODAY)) == values


def test_the_division_table_is_a_parameter() -> None:
    table = DivisionTable.parse_loc_dat('11 province="北京市"\n  0105 county="[-1990]朝阳区"\n')
    value = make_id("110105", "19800101")
    later = make_id("110105", "19950101")
    other = make_id("440106", "19800101")
    assert validate_resident_id(value, today=TODAY, divisions=table) == value
    for bad in (later, other):
        with pytest.raises(InvalidIdentifierError, match="division code"):
            validate_resident_id(bad, today=TODAY, divisions=table)
    check = check_resident_ids([value, later, other], today=TODAY, divisions=table)
    assert check.reason.to_pylist() == [None, "id_region", "id_region"]
    assert outcome(later) == later  # the shipped table has 110105 open-ended


# --- column checks agree with the scalar functions -----------------------------------------------
_MESSY = st.sampled_from(
    [
        *"0123456789Xx -\t",
        "\u3000",
        "－",
        "０",
        "９",
        "Ｘ",
        "ｘ",
        "٣",
        "²",
        "ß",
        "中",
        "\u00a0",
        "A",
    ]
)
_CODES = sorted(load_division_table())


@st.composite
def resident_like(draw: st.DrawFn) -> str | None:
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return None
    if kind == 1:
        return draw(st.text(_MESSY, max_size=22))
    code = draw(
        st.one_of(
            st.sampled_from(_CODES),
            st.sampled_from(["810000", "830000", "932682", "990426", "111111"]),
            st.from_regex(r"[0-9]{6}", fullmatch=True),
        )
    )
    born = draw(st.dates(date(1790, 1, 1), date(2030, 12, 31))).strftime("%Y%m%d")
    if draw(st.booleans()):
        born = born[:4] + draw(st.from_regex(r"[0-9]{4}", fullmatch=True))
    seq = draw(st.from_regex(r"[0-9]{3}", fullmatch=True))
    value = make_id(code, born, seq)
    if kind == 3:
        value = value[:17] + draw(st.sampled_from("0123456789Xx"))
    if kind == 4 and born.startswith("19"):
        value = code + born[2:] + seq
    if draw(st.booleans()):
        position = draw(st.integers(0, len(value)))
        value = value[:position] + draw(_MESSY) + value[position:]
    return value


@settings(max_examples=300, deadline=None)
@given(st.lists(resident_like(), max_size=12))
def test_resident_column_agrees_with_scalar(values: list[str | None]) -> None:
    expected = [None if v is None else outcome(v) for v in values]
    assert column_outcomes(check_resident_ids(values, today=TODAY)) == expected


def test_resident_column_agrees_on_random_numbers() -> None:
    rng = np.random.default_rng(20261127)
    codes = np.array(_CODES + [f"{c:06d}" for c in rng.integers(0, 999_999, 500)])
    values: list[str] = []
    for _ in range(4000):
        born = f"{rng.integers(1790, 2030)}{rng.integers(0, 14):02d}{rng.integers(0, 33):02d}"
        value = make_id(str(rng.choice(codes)), born, f"{rng.integers(0, 1000):03d}")
        if rng.random() < 0.2:
            value = value[:17] + str(rng.integers(0, 10))
        values.append(value)
    expected = [outcome(v) for v in values]
    assert column_outcomes(check_resident_ids(values, today=TODAY)) == expected
    assert sum(not e.startswith("!") for e in expected) > 1000  # the sample exercises both sides


def test_column_input_types() -> None:
    values = ["11010519491231002X", None, "44011320141005001x", "bad", "610104620927690"]
    expected = column_outcomes(check_resident_ids(values, today=TODAY))
    assert expected == [
        "11010519491231002X",
        None,
        "44011320141005001X",
        "!id_length",
        "610104196209276908",
    ]
    for typ in (pa.string(), pa.large_string(), pa.string_view()):
        array = pa.array(values, type=typ)
        assert column_outcomes(check_resident_ids(array, today=TODAY)) == expected
    chunked = pa.chunked_array([values[:2], values[2:]], type=pa.string())
    assert column_outcomes(check_resident_ids(chunked, today=TODAY)) == expected
    sliced = pa.array(["x", *values, "y"])[1:-1]
    assert column_outcomes(check_resident_ids(sliced, today=TODAY)) == expected
    result = check_resident_ids(values, today=TODAY)
    assert result.canonical.type == pa.string() and result.reason.type == pa.string()
    assert result.rejected.to_pylist() == [False, False, False, True, False]
    empty = check_resident_ids([], today=TODAY)
    assert len(empty.canonical) == 0 and len(empty.reason) == 0
    nulls = check_resident_ids(pa.nulls(3), today=TODAY)
    assert nulls.canonical.to_pylist() == [None] * 3 and nulls.reason.to_pylist() == [None] * 3


def test_reason_codes_are_the_documented_ones() -> None:
    assert RESIDENT_ID_REASONS == (
        "id_length",
        "id_charset",
        "id_check_char",
        "id_birth_date",
        "id_region",
    )
    assert CREDIT_CODE_REASONS == ("uscc_length", "uscc_charset", "uscc_format", "uscc_check_char")


# --- credit codes (INDEX.md §2) ------------------------------------------------------------------
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def _uscc_reason(value: str) -> str:
    folded = re.sub(r"[ \-]", "", value).upper()
    if len(folded) != 18:
        return "uscc_length"
    if any(c not in _USCC_ALPHABET for c in folded):
        return "uscc_charset"
    if not folded[:8].isdigit():
        return "uscc_format"
    return "uscc_check_char"


def test_uscc_vector_counts() -> None:
    assert len(USCC) == 223
    assert sum(row["valid"] == "true" for row in USCC) == 208
    assert sum(row["value"] != row["normalized"] for row in USCC if row["valid"] == "true") == 5


@pytest.mark.parametrize("row", USCC, ids=lambda row: row["value"] or "<empty>")
def test_uscc_rows(row: dict[str, str]) -> None:
    if row["valid"] == "true":
        assert validate_credit_code(row["value"]) == row["normalized"]
        assert validate_holder_id("legal_person", row["value"]) == row["normalized"]
    else:
        with pytest.raises(InvalidIdentifierError) as info:
            validate_credit_code(row["value"])
        assert info.value.reason == _uscc_reason(row["value"])
        assert row["value"].upper() not in str(info.value) or not row["value"]


def uscc_outcome(value: str) -> str:
    try:
        return validate_credit_code(value)
    except InvalidIdentifierError as exc:
        return "!" + exc.reason


def test_uscc_column_agrees_on_the_vectors() -> None:
    values = [row["value"] for row in USCC]
    got = column_outcomes(check_credit_codes(values))
    assert got == [uscc_outcome(v) for v in values]
    assert got == [
        row["normalized"] if row["valid"] == "true" else "!" + _uscc_reason(row["value"])
        for row in USCC
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("９１１１００００６０００３７３４１Ｌ", "91110000600037341L"),
        ("９１１１００００６０００３７３４１ｌ", "91110000600037341L"),
        ("91\u3000110000－600037341L", "91110000600037341L"),
        ("9111000060003734ßL", "!uscc_charset"),  # upper() would make it 19 characters
        ("91110000600037341\x1c", "!uscc_charset"),  # str.strip() would drop it
        ("91110000600037341\u00a0", "!uscc_charset"),
        ("9111000060003734٣L", "!uscc_charset"),
    ],
)
def test_uscc_folding(raw: str, expected: str) -> None:
    assert uscc_outcome(raw) == expected
    assert column_outcomes(check_credit_codes([raw])) == [expected]


def test_normalize_credit_code_skips_the_check_digit() -> None:
    assert normalize_credit_code("91110000600037341n") == "91110000600037341N"
    assert uscc_outcome("91110000600037341n") == "!uscc_check_char"


_USCC_CHARS = st.sampled_from([*_USCC_ALPHABET, *"IOSVZabl -", "０", "Ｌ", "ｌ", "ß", "中"])


@st.composite
def uscc_like(draw: st.DrawFn) -> str | None:
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return None
    if kind == 1:
        return draw(st.text(_USCC_CHARS, max_size=21))
    body = draw(
        st.from_regex(r"[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{9}", fullmatch=True)
    )
    weights = [pow(3, i, 31) for i in range(17)]
    total = sum(_USCC_ALPHABET.index(c) * w for c, w in zip(body, weights, strict=True))
    value = body + _USCC_ALPHABET[(31 - total % 31) % 31]
    if kind == 3:
        position = draw(st.integers(0, 17))
        value = value[:position] + draw(_USCC_CHARS) + value[position + 1 :]
    return value


@settings(max_examples=300, deadline=None)
@given(st.lists(uscc_like(), max_size=12))
def test_uscc_column_agrees_with_scalar(values: list[str | None]) -> None:
    expected = [None if v is None else uscc_outcome(v) for v in values]
    assert column_outcomes(check_credit_codes(values)) == expected


# --- dispatch on kind ----------------------------------------------------------------------------
def test_validate_holder_id_dispatches() -> None:
    assert validate_holder_id("natural_person", "11010519491231002x", today=TODAY) == (
        "11010519491231002X"
    )
    assert validate_holder_id("legal_person", "91110000600037341l") == "91110000600037341L"
    with pytest.raises(InvalidIdentifierError) as info:
        validate_holder_id("natural_person", "91110000600037341L", today=TODAY)
    assert info.value.reason == "id_length" or info.value.reason == "id_charset"
    with pytest.raises(InvalidIdentifierError) as info:
        validate_holder_id("alien", "11010519491231002X")
    assert info.value.reason == "holder_kind"


def test_check_holder_ids_by_kind_column() -> None:
    kinds = ["natural_person", "legal_person", "alien", None, "natural_person", "legal_person"]
    values = [
        "11010519491231002x",
        "91110000600037341l",
        "11010519491231002X",
        "11010519491231002X",
        None,
        "11010519491231002X",
    ]
    check = check_holder_ids(kinds, values, today=TODAY)
    assert column_outcomes(check) == [
        "11010519491231002X",
        "91110000600037341L",
        "!holder_kind",
        "!holder_kind",
        None,
        "!uscc_check_char",  # X is in the credit code alphabet, so only the check digit fails
    ]
    single = check_holder_ids("natural_person", values, today=TODAY)
    assert column_outcomes(single) == column_outcomes(check_resident_ids(values, today=TODAY))
    unknown = check_holder_ids("alien", ["11010519491231002X", None])
    assert column_outcomes(unknown) == ["!holder_kind", None]
    with pytest.raises(ValueError, match="same length"):
        check_holder_ids(["natural_person"], ["a", "b"])


# --- holder keys and masking ---------------------------------------------------------------------
@pytest.mark.parametrize("key_length", [32, 64, 65, 131])
def test_holder_key_is_hmac_sha256(key_length: int) -> None:
    key = bytes((i * 7) % 256 for i in range(key_length))
    for kind, value in (
        ("natural_person", "11010519491231002X"),
        ("legal_person", "91110000600037341L"),
    ):
        expected = hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
        assert holder_key(key, kind, value) == expected  # type: ignore[arg-type]


def test_holder_key_separates_kinds_and_keys() -> None:
    value = "11010519491231002X"
    a = holder_key(HUB_KEY, "natural_person", value)
    assert a == holder_key(HUB_KEY, "natural_person", value)
    assert a != holder_key(bytes(32), "natural_person", value)
    assert re.fullmatch(r"[0-9a-f]{64}", a)
    assert holder_key(HUB_KEY, "legal_person", "91110000600037341L") != holder_key(
        HUB_KEY, "natural_person", "91110000600037341L"[:17] + "0"
    )


def test_holder_key_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="canonical"):
        holder_key(HUB_KEY, "natural_person", "11010519491231002x")
    with pytest.raises(ValueError, match="canonical"):
        holder_key(HUB_KEY, "legal_person", "9111000060003734IL")
    with pytest.raises(ValueError, match="canonical"):
        holder_key(HUB_KEY, "natural_person", "11010519491231002X\n")
    with pytest.raises(ValueError, match="at least 32 bytes"):
        holder_key(b"short", "natural_person", "11010519491231002X")
    with pytest.raises(ValueError, match="holder kind"):
        holder_key(HUB_KEY, "alien", "11010519491231002X")  # type: ignore[arg-type]


def test_holder_keys_match_holder_key() -> None:
    rng = np.random.default_rng(7)
    values: list[str | None] = [
        None if rng.random() < 0.1 else make_id("440106", "19900101", f"{i % 1000:03d}")
        for i in range(2000)
    ]
    keys = holder_keys(HUB_KEY, "natural_person", pa.array(values))
    assert keys.type == pa.string()
    assert keys.to_pylist() == [
        None if v is None else holder_key(HUB_KEY, "natural_person", v) for v in values
    ]
    assert holder_keys(HUB_KEY, "natural_person", []).to_pylist() == []
    assert holder_keys(HUB_KEY, "legal_person", [None, None]).to_pylist() == [None, None]
    with pytest.raises(ValueError, match="canonical"):
        holder_keys(HUB_KEY, "natural_person", ["11010519491231002X", "11010519491231002x"])
    with pytest.raises(ValueError, match="canonical"):
        holder_keys(HUB_KEY, "natural_person", ["11010519491231002X\n"])


def test_mask_id() -> None:
    assert mask_id("44010619900307123X") == "440106********123X"
    assert mask_id("91110000600037341L") == "911100********341L"
    assert mask_id("12345") == "*****"
    assert mask_id("") == ""
