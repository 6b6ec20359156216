"""Synthetic resident ID numbers (GB 11643) and unified social credit codes (GB 32100), vectorised.

A resident ID number is held as its first 17 digits in an int64 (``region * 10**11 + yyyymmdd *
10**3 + sequence``); the check character is computed over a whole column at once. The defective
forms a department export may carry (wrong check character, legacy 15 digits, full-width digits)
are made one value at a time: only the few dirty rows need them.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
Strs = npt.NDArray[np.str_]

# GB 11643 MOD 11-2: weight of digit i is 2**(17-i) mod 11; the remainder picks the check char.
_RIC_WEIGHTS: Final = np.array([pow(2, 17 - i, 11) for i in range(17)], dtype=np.int64)
_RIC_CHECK: Final = np.array(list("10X98765432"))
_RIC_CHARS: Final = "0123456789X"

# GB 32100: the 31-character alphabet, weights 3**i mod 31.
USCC_ALPHABET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS: Final = np.array([pow(3, i, 31) for i in range(17)], dtype=np.int64)
_USCC_CHARS: Final = np.array(list(USCC_ALPHABET))
# GB 11714 organisation code: weights of the 8 body digits; 10 -> X, 11 -> 0.
_ORG_WEIGHTS: Final = np.array([3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)

_FULLWIDTH: Final = str.maketrans({c: chr(ord(c) + 0xFEE0) for c in "0123456789X"})


def _digits(numbers: I64, width: int) -> I64:
    """The (n, width) matrix of decimal digits of ``numbers``, most significant first."""
    # Through the zero-padded text (UCS-4 code points): much faster than integer division.
    text = np.strings.zfill(numbers.astype(f"U{width}"), width)
    matrix: I64 = text.view(np.uint32).reshape(numbers.size, width).astype(np.int64) - ord("0")
    return matrix


def resident_id_body(region: I64, birth: npt.NDArray[np.datetime64], sequence: I64) -> I64:
    """The first 17 digits as int64 from division code, birth date and 3-digit sequence."""
    year = birth.astype("datetime64[Y]").astype(np.int64) + 1970
    month = birth.astype("datetime64[M]").astype(np.int64) % 12 + 1
    day = (birth - birth.astype("datetime64[M]")).astype(np.int64) + 1
    ymd = year * 10_000 + month * 100 + day
    body: I64 = region * 10**11 + ymd * 1_000 + sequence
    return body


def resident_ids(body: I64) -> Strs:
    """Canonical 18-character resident ID numbers for 17-digit bodies."""
    remainder = (_digits(body, 17) @ _RIC_WEIGHTS) % 11
    ids: Strs = np.strings.add(body.astype("U17"), _RIC_CHECK[remainder])
    return ids


def with_wrong_check_char(canonical: str, shift: int) -> str:
    """The number with its check character replaced by another (``shift`` in 1..10 picks which)."""
    if not 1 <= shift <= 10:
        raise ValueError("shift must be in 1..10")
    index = _RIC_CHARS.index(canonical[17])
    return canonical[:17] + _RIC_CHARS[(index + shift) % 11]


def legacy_form(canonical: str) -> str:
    """The 15-digit first-generation form (two-digit year, no check char) of a 19xx-born number."""
    if canonical[6:8] != "19":
        raise ValueError("only numbers of people born 1900-1999 have a 15-digit form")
    return canonical[:6] + canonical[8:17]


def fullwidth_form(value: str) -> str:
    """The value with its digits (and X) full-width, as some input methods type them."""
    return value.translate(_FULLWIDTH)


def _organisation_check(body: I64) -> I64:
    """GB 11714 check value per 8-digit body: 0-9, or 10 for X."""
    check = 11 - (_digits(body, 8) @ _ORG_WEIGHTS) % 11
    value: I64 = np.where(check == 11, 0, check)
    return value


def organisation_codes(body: I64) -> Strs:
    """GB 11714 organisation codes: 8 body digits plus their check character."""
    check = _organisation_check(body)
    chars = np.where(check == 10, "X", check.astype("U2"))
    codes: Strs = np.strings.add(np.strings.zfill(body.astype("U8"), 8), chars)
    return codes


def credit_codes(prefix: str, region: I64, org_body: I64) -> Strs:
    """Unified social credit codes: 2-char prefix (``91`` = enterprise), region, org code, check."""
    if len(prefix) != 2 or any(c not in USCC_ALPHABET for c in prefix):
        raise ValueError("prefix must be two credit code characters")
    org_check = _organisation_check(org_body)
    values = np.zeros((org_body.size, 17), dtype=np.int64)
    values[:, 0] = USCC_ALPHABET.index(prefix[0])
    values[:, 1] = USCC_ALPHABET.index(prefix[1])
    values[:, 2:8] = _digits(region, 6)
    values[:, 8:16] = _digits(org_body, 8)
    values[:, 16] = np.where(org_check == 10, USCC_ALPHABET.index("X"), org_check)
    check = (31 - (values @ _USCC_WEIGHTS) % 31) % 31
    first17 = np.strings.add(
        np.strings.add(prefix, region.astype("U6")), organisation_codes(org_body)
    )
    codes: Strs = np.strings.add(first17, _USCC_CHARS[check])
    return codes
