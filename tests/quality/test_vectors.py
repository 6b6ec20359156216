"""The gate judges every row of the cn_ric and cn_uscc vectors as docs/identifiers.md says.

tests/catalog_schemas/test_holder.py holds the checkers to the policy row by row; here each
vector value goes through the whole gate (GX suite, custom expectation, reason collection,
canonical form) inside an otherwise valid license row, and the verdict, the reason and the
canonical form are compared with the policy as written, restated below.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pyarrow as pa
from quality_data import vector_rows

from catalog_schemas.catalog import shipped_catalog
from quality import Gate, GateResult

TODAY = dt.date(2026, 11, 27)
D = dt.date
RIC = vector_rows("cn_ric/ric_cases.csv")
USCC = vector_rows("cn_uscc/uscc_cases.csv")

# docs/identifiers.md §3: rows outside `structure`/`region` whose verdict is a rejection
POLICY_REJECTED = {
    "110201199312010077",  # 110201 ended 1982, born 1993
    "370620199505100123",  # 370620 ended 1987, born 1995
    "111111111111111",  # 111111 is no division code
    "235407195106112745",  # 235407 is no division code
}
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def _ric_expected(row: dict[str, str]) -> tuple[bool, str]:
    """(accepted, canonical or reason) as the written policy says."""
    value = row["value"]
    if row["category"] == "structure":
        folded = re.sub(r"[ \-]", "", value).upper()
        if len(folded) not in (15, 18):
            return False, "id_length"
        pattern = r"[0-9]{17}[0-9X]" if len(folded) == 18 else r"[0-9]{15}"
        if not re.fullmatch(pattern, folded):
            return False, "id_charset"
        if len(folded) == 18 and row["mod11_2_ok"] == "false":
            return False, "id_check_char"
        return False, "id_birth_date"
    if row["category"] == "region" or value in POLICY_REJECTED:
        return False, "id_region"
    return True, row["normalized18"]


def _uscc_expected(row: dict[str, str]) -> tuple[bool, str]:
    if row["valid"] == "true":
        return True, row["normalized"]
    folded = re.sub(r"[ \-]", "", row["value"]).upper()
    if len(folded) != 18:
        return False, "uscc_length"
    if any(c not in _USCC_ALPHABET for c in folded):
        return False, "uscc_charset"
    if not folded[:8].isdigit():
        return False, "uscc_format"
    return False, "uscc_check_char"


def _verdicts(result: GateResult, field: str) -> dict[str, tuple[bool, str]]:
    out: dict[str, tuple[bool, str]] = {}
    for row in result.good.to_pylist():
        out[row["_row_ref"]] = (True, row[field])
    for row in result.rejected.to_pylist():
        (reason,) = row["_reasons"]  # the ID is the only fault of these rows
        kind, _, named = reason.partition(":")
        assert named == field
        out[row["_row_ref"]] = (False, kind)
    return out


def test_vector_counts() -> None:
    assert len(RIC) == 77 and len(USCC) == 223


def test_every_resident_id_vector_through_the_gate() -> None:
    rows: list[dict[str, Any]] = [
        {
            "_row_ref": f"v{i}",
            "certificate_no": f"SI-{i:04d}",
            "insured_id": row["value"],
            "insured_name": "参保人",
            "insurance_scheme": "pension",
            "enrolled_since": D(2010, 1, 1),
            "months_paid": 12,
            "issue_date": D(2026, 1, 10),
            "valid_until": D(2026, 4, 10),
        }
        for i, row in enumerate(RIC)
    ]
    gate = Gate(shipped_catalog().license_type("social_insurance_certificate"), today=TODAY)
    got = _verdicts(gate.check(pa.Table.from_pylist(rows)), "insured_id")
    mismatches = []
    for i, row in enumerate(RIC):
        accepted, detail = _ric_expected(row)
        verdict = got[f"v{i}"]
        if accepted:
            # the canonical form is upstream's where upstream gives one; else 18 characters
            ok = verdict[0] and (verdict[1] == detail if detail else len(verdict[1]) == 18)
        else:
            ok = verdict == (False, detail)
        if not ok:
            mismatches.append((row["value"], row["category"], (accepted, detail), verdict))
    assert mismatches == []
    assert sum(1 for v in got.values() if v[0]) == 39  # 77 - 31 structure - 3 region - 4 policy


def test_every_credit_code_vector_through_the_gate() -> None:
    """As a real-estate owner of kind legal_person (the license number is another field)."""
    rows = [
        {
            "_row_ref": f"u{i}",
            "certificate_no": f"C{i}",
            "owner_kind": "legal_person",
            "owner_id": row["value"],
            "owner_name": "业主",
            "location": "广州市",
            "area_m2": 50.0,
            "usage": "office",
            "issue_date": D(2026, 5, 1),
        }
        for i, row in enumerate(USCC)
    ]
    gate = Gate(shipped_catalog().license_type("real_estate_title"), today=TODAY)
    got = _verdicts(gate.check(pa.Table.from_pylist(rows)), "owner_id")
    mismatches = [
        (row["value"], _uscc_expected(row), got[f"u{i}"])
        for i, row in enumerate(USCC)
        if got[f"u{i}"] != _uscc_expected(row)
    ]
    assert mismatches == []
    assert sum(1 for v in got.values() if v[0]) == 208


def test_credit_code_as_license_number_is_unique_in_canonical_form() -> None:
    """A business license's number is its credit code: two spellings of one code are one
    record in the lake, so both rows are duplicates; every other vector row is judged alone."""
    rows = [
        {
            "_row_ref": f"u{i}",
            "credit_code": row["value"],
            "company_name": "公司",
            "company_type": "llc",
            "legal_rep_id": "11010519491231002X",
            "legal_rep_name": "法人",
            "address": "广州市",
            "established_date": D(2015, 3, 1),
        }
        for i, row in enumerate(USCC)
    ]
    expected: dict[str, list[str]] = {}
    keys: dict[str, list[str]] = {}
    for i, row in enumerate(USCC):
        accepted, detail = _uscc_expected(row)
        keys.setdefault(detail if accepted else row["value"], []).append(f"u{i}")
        if not accepted:
            expected[f"u{i}"] = [f"{detail}:credit_code"]
    for refs in keys.values():
        if len(refs) > 1:
            for ref in refs:
                expected.setdefault(ref, []).append("duplicate:credit_code")
    assert sum(len(r) > 1 for r in keys.values()) >= 1  # the vectors do spell codes twice
    gate = Gate(shipped_catalog().license_type("business_license"), today=TODAY)
    result = gate.check(pa.Table.from_pylist(rows))
    got = {row["_row_ref"]: row["_reasons"] for row in result.rejected.to_pylist()}
    assert got == expected
    good = {row["_row_ref"]: row["credit_code"] for row in result.good.to_pylist()}
    for i, row in enumerate(USCC):
        if f"u{i}" in good:
            assert good[f"u{i}"] == row["normalized"]
