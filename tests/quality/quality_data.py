"""Synthetic, numpy-vectorised test data for the quality gate (valid unless a test breaks it).

The check characters are computed here independently of catalog_schemas.holder (GB 11643
MOD 11-2, GB 32100 MOD 31), so a gate test also cross-checks the checker.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa

VECTORS = Path(__file__).resolve().parents[1] / "vectors"

# Current Guangzhou district codes (GB/T 2260, tests/vectors/gbt2260/guangdong_44_modood_2023.csv).
REGIONS = np.array(
    [440103, 440104, 440105, 440106, 440111, 440112, 440113, 440114, 440115, 440117, 440118]
)
_RIC_WEIGHTS = np.array([pow(2, 17 - i, 11) for i in range(17)], dtype=np.int64)
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = np.array([pow(3, i, 31) for i in range(17)], dtype=np.int64)


def ric_check_char(body17: str) -> str:
    """GB 11643 MOD 11-2 check character of 17 digits."""
    total = sum(int(d) * w for d, w in zip(body17, _RIC_WEIGHTS.tolist(), strict=True))
    value = (12 - total % 11) % 11
    return "X" if value == 10 else str(value)


def resident_ids(n: int, *, seed: int = 0) -> np.ndarray:
    """``n`` distinct-ish valid 18-character resident ID numbers (object array of str)."""
    rng = np.random.default_rng(seed)
    region = rng.choice(REGIONS, n)
    birth = np.datetime64("1960-01-01") + rng.integers(0, 40 * 365, n).astype("timedelta64[D]")
    ymd = np.char.replace(np.datetime_as_string(birth, unit="D"), "-", "")
    seq = rng.integers(0, 1000, n)
    body = np.char.add(np.char.add(region.astype(str), ymd), np.char.zfill(seq.astype(str), 3))
    digits = np.frombuffer(body.astype("S17").tobytes(), dtype=np.uint8).reshape(n, 17) - ord("0")
    check = (12 - (digits.astype(np.int64) @ _RIC_WEIGHTS) % 11) % 11
    check_char = np.where(check == 10, "X", check.astype(str))
    return np.char.add(body, check_char).astype(object)


def credit_code(body17: str) -> str:
    """A unified social credit code: ``body17`` plus its GB 32100 check character."""
    total = sum(
        _USCC_ALPHABET.index(c) * w for c, w in zip(body17, _USCC_WEIGHTS.tolist(), strict=True)
    )
    return body17 + _USCC_ALPHABET[(31 - total % 31) % 31]


def marriage_batch(n: int, *, seed: int = 0) -> pa.Table:
    """``n`` valid mapped marriage rows (what connectors.apply_mapping yields)."""
    rng = np.random.default_rng(seed)
    days = rng.integers(0, 20 * 365, n) + (dt.date(2000, 1, 1) - dt.date(1970, 1, 1)).days
    return pa.table(
        {
            "certificate_no": pa.array(
                np.char.add("J440106-", np.arange(n).astype(str)).astype(object), pa.string()
            ),
            "party_a_id": pa.array(resident_ids(n, seed=seed), pa.string()),
            "party_a_name": pa.array(np.full(n, "张三", dtype=object), pa.string()),
            "party_b_id": pa.array(resident_ids(n, seed=seed + 1), pa.string()),
            "party_b_name": pa.array(np.full(n, "李四", dtype=object), pa.string()),
            "registration_date": pa.array(days.astype(np.int32), pa.int32()).cast(pa.date32()),
            "registration_office": pa.array(
                np.full(n, "广州市天河区民政局", dtype=object), pa.string()
            ),
            "_row_ref": pa.array(np.arange(n).astype(str).astype(object), pa.string()),
            "_errors": pa.array([[]] * n, pa.list_(pa.string())),
        }
    )


def vector_rows(name: str) -> list[dict[str, str]]:
    """Rows of a CSV under tests/vectors (``cn_ric/ric_cases.csv``, ``cn_uscc/uscc_cases.csv``)."""
    with (VECTORS / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def legacy_ids() -> list[tuple[str, str]]:
    """Valid 15-digit numbers with the 18-digit form an upstream library asserts."""
    return [
        (r["value"], r["normalized18"])
        for r in vector_rows("cn_ric/ric_cases.csv")
        if len(r["value"]) == 15 and r["valid"] == "true" and r["normalized18"]
    ]


def valid_credit_codes() -> list[str]:
    """Distinct valid credit codes already in canonical form."""
    rows = vector_rows("cn_uscc/uscc_cases.csv")
    return sorted(
        {r["value"] for r in rows if r["valid"] == "true" and r["value"] == r["normalized"]}
    )


def wrong_check_char(value: str) -> str:
    """``value`` with its last character replaced by another valid-looking one."""
    return value[:-1] + ("1" if value[-1] != "1" else "2")
