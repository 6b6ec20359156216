"""Holder identifiers: resident ID numbers (GB 11643) and unified social credit codes (GB 32100).

Each check exists twice: a scalar function for one value (raises :class:`InvalidIdentifierError`
with a stable reason code) and a column function over a pyarrow array (numpy over the UTF-8 bytes,
no Python loop per value) that returns the canonical form or the reason per row. Both follow the
same rules in the same order, so a row's reason is the same either way; the region policy is in
docs/identifiers.md. Messages never contain the number.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final, Literal, TypeAlias, get_args

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from stdnum import exceptions as stdnum_exceptions
from stdnum.cn import uscc
from stdnum.iso7064 import mod_11_2

from catalog_schemas.division import DivisionTable, load_division_table
from catalog_schemas.errors import InvalidIdentifierError

HolderKind = Literal["natural_person", "legal_person"]
HOLDER_KINDS: Final[tuple[HolderKind, ...]] = get_args(HolderKind)

StringValues: TypeAlias = pa.Array | pa.ChunkedArray | Sequence[str | None]
U8: TypeAlias = npt.NDArray[np.uint8]
I64: TypeAlias = npt.NDArray[np.int64]
Bools: TypeAlias = npt.NDArray[np.bool_]

# Reason codes, in the order the checks run: a value gets the reason of the first check it fails.
RESIDENT_ID_REASONS: Final = (
    "id_length",
    "id_charset",
    "id_check_char",
    "id_birth_date",
    "id_region",
)
CREDIT_CODE_REASONS: Final = ("uscc_length", "uscc_charset", "uscc_format", "uscc_check_char")
HOLDER_KIND_REASON: Final = "holder_kind"

_MESSAGES: Final = {
    "id_length": "resident ID number must have 18 characters (or 15 for a legacy number)",
    "id_charset": "resident ID number must be digits, with X allowed only as the last character",
    "id_check_char": "resident ID number check character (GB 11643 MOD 11-2) does not match",
    "id_birth_date": "resident ID number birth date is not a real date between 1800 and today",
    "id_region": "resident ID number division code is not accepted (see docs/identifiers.md)",
    "uscc_length": "unified social credit code must have 18 characters",
    "uscc_charset": "unified social credit code may use only 0-9 and A-Y without I, O, S, V, Z",
    "uscc_format": "unified social credit code must start with 8 digits",
    "uscc_check_char": "unified social credit code check character (GB 32100) does not match",
    "holder_kind": "holder kind must be natural_person or legal_person",
}

MIN_BIRTH_YEAR: Final = 1800
# HK, Macao and Taiwan residents' residence permits (港澳台居民居住证, since 2018) use these codes.
RESIDENCE_PERMIT_CODES: Final = frozenset({"810000", "820000", "830000"})
# Returned by the region rule: the last birth year a division code may carry.
_REJECT: Final = -1
_NO_LIMIT: Final = 9999

# --- normalisation -------------------------------------------------------------------------------
# Separators removed anywhere (which also trims): ASCII space, hyphen and ASCII whitespace controls.
_SEPARATORS: Final = " -\t\n\v\f\r"
_FULLWIDTH_OFFSET: Final = 0xFEE0  # U+FF01..U+FF5E are full-width forms of ASCII 0x21..0x7E


def _fold_ascii(code: int) -> int | None:
    if chr(code) in _SEPARATORS:
        return None
    if ord("a") <= code <= ord("z"):
        return code - 0x20
    return code


def _build_fold_table() -> dict[int, int | None]:
    table: dict[int, int | None] = {code: _fold_ascii(code) for code in range(0x80)}
    for code in range(0x21, 0x7F):
        table[code + _FULLWIDTH_OFFSET] = _fold_ascii(code)
    table[0x3000] = None  # ideographic (full-width) space
    return table


_FOLD: Final = _build_fold_table()
_SEPARATOR_BYTE: Final = np.zeros(256, dtype=np.bool_)
_SEPARATOR_BYTE[[ord(c) for c in _SEPARATORS]] = True
_CHANGING_BYTE: Final = _SEPARATOR_BYTE.copy()
_CHANGING_BYTE[[ord("a") + i for i in range(26)]] = True
_CHANGING_BYTE[[0xEF, 0xE3]] = True  # lead bytes of full-width forms and U+3000


def _fold(value: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"an identifier must be a str, got {type(value).__name__}")
    return value.translate(_FOLD)


def _invalid(reason: str) -> InvalidIdentifierError:
    return InvalidIdentifierError(_MESSAGES[reason], reason=reason)


# --- resident identity numbers (scalar) ----------------------------------------------------------
_RIC18 = re.compile(r"[0-9]{17}[0-9X]")
_RIC15 = re.compile(r"[0-9]{15}")


def _structure(value: str) -> tuple[str, bool]:
    """Canonical 18-character form and whether the input was a legacy 15-digit number."""
    folded = _fold(value)
    if len(folded) not in (15, 18):
        raise _invalid("id_length")
    if len(folded) == 18:
        if not _RIC18.fullmatch(folded):
            raise _invalid("id_charset")
        return folded, False
    if not _RIC15.fullmatch(folded):
        raise _invalid("id_charset")
    body = folded[:6] + "19" + folded[6:]
    return body + mod_11_2.calc_check_digit(body), True


def normalize_resident_id(value: str) -> str:
    """Canonical 18-character form (folded, separators removed, 15 digits converted); no checks.

    Raises ``id_length`` or ``id_charset`` when the value cannot be put in that form. Use
    :func:`validate_resident_id` to also check the check character, birth date and region.
    """
    return _structure(value)[0]


def validate_resident_id(
    value: str, *, today: date | None = None, divisions: DivisionTable | None = None
) -> str:
    """The canonical 18-character resident ID number, or :class:`InvalidIdentifierError`."""
    canonical, legacy = _structure(value)
    if canonical[17] != mod_11_2.calc_check_digit(canonical[:17]):
        raise _invalid("id_check_char")
    try:
        born = date(int(canonical[6:10]), int(canonical[10:12]), int(canonical[12:14]))
    except ValueError:
        raise _invalid("id_birth_date") from None
    if born.year < MIN_BIRTH_YEAR or born > (today or date.today()):
        raise _invalid("id_birth_date")
    table = divisions if divisions is not None else load_division_table()
    permanent_residence = not legacy and canonical[0] == "9"
    if born.year > _last_birth_year(table, canonical[:6], permanent_residence=permanent_residence):
        raise _invalid("id_region")
    return canonical


def _last_birth_year(table: DivisionTable, code: str, *, permanent_residence: bool) -> int:
    """The latest birth year a number with this division code may carry; ``_REJECT`` if none."""
    if permanent_residence:
        # Foreigner permanent residence ID (2023 format): 9, the issuing province, nationality.
        return _NO_LIMIT if table.province_exists(code[1:3]) else _REJECT
    if code in RESIDENCE_PERMIT_CODES:
        return _NO_LIMIT
    if not table.province_exists(code[:2]) or not table.exists(code):
        return _REJECT
    # A code created after the birth year is fine (numbers are given at registration, and people
    # keep theirs when the county is renamed); one abolished before the birth year cannot be.
    last = table.last_year(code)
    return _NO_LIMIT if last is None else last


# --- unified social credit codes (scalar) --------------------------------------------------------
_USCC_ALPHABET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_CHARS: Final = frozenset(_USCC_ALPHABET)


def normalize_credit_code(value: str) -> str:
    """Folded, separator-free, upper-case credit code of 18 alphabet characters; no check digit."""
    folded = _fold(value)
    if len(folded) != 18:
        raise _invalid("uscc_length")
    # Checked here, before python-stdnum sees the value: its compact() upper-cases and strips
    # non-ASCII characters, which could change the length and so the reason.
    if not _USCC_CHARS.issuperset(folded):
        raise _invalid("uscc_charset")
    return folded


def validate_credit_code(value: str) -> str:
    """The canonical unified social credit code, or :class:`InvalidIdentifierError`."""
    folded = normalize_credit_code(value)
    try:
        return str(uscc.validate(folded))
    except stdnum_exceptions.InvalidLength:
        raise _invalid("uscc_length") from None
    except stdnum_exceptions.InvalidChecksum:
        raise _invalid("uscc_check_char") from None
    except stdnum_exceptions.InvalidFormat:
        # The alphabet was checked above, so this is python-stdnum's first-8-digits rule.
        raise _invalid("uscc_format") from None


# --- dispatch ------------------------------------------------------------------------------------
def validate_holder_id(
    kind: str, value: str, *, today: date | None = None, divisions: DivisionTable | None = None
) -> str:
    """Validate ``value`` as the identifier of a holder of ``kind`` (from the catalog)."""
    if kind == "natural_person":
        return validate_resident_id(value, today=today, divisions=divisions)
    if kind == "legal_person":
        return validate_credit_code(value)
    raise _invalid(HOLDER_KIND_REASON)


def mask_id(canonical: str) -> str:
    """Show only the first 6 and last 4 characters: ``440106********123X``."""
    if len(canonical) <= 10:
        return "*" * len(canonical)
    return canonical[:6] + "*" * (len(canonical) - 10) + canonical[-4:]


# --- holder keys ---------------------------------------------------------------------------------
MIN_HUB_KEY_BYTES: Final = 32
_CANONICAL_PATTERN: Final[dict[str, str]] = {
    "natural_person": "[0-9]{17}[0-9X]",
    "legal_person": "[0-9A-HJ-NPQRTUWXY]{18}",
}


def _hmac_pads(hub_key: bytes, kind: str) -> tuple[hashlib._Hash, hashlib._Hash]:
    """Fresh copies of the HMAC's inner and outer hashes, keyed and ready for the value."""
    inner, outer = _keyed_pads(hub_key, kind)
    return inner.copy(), outer.copy()


# A hub has one key: keying the pads once per process saves most of a one-number lookup's HMAC.
@functools.lru_cache(maxsize=8)
def _keyed_pads(hub_key: bytes, kind: str) -> tuple[hashlib._Hash, hashlib._Hash]:
    if not isinstance(hub_key, bytes) or len(hub_key) < MIN_HUB_KEY_BYTES:
        raise ValueError(f"the hub key must be at least {MIN_HUB_KEY_BYTES} bytes")
    if kind not in _CANONICAL_PATTERN:
        raise ValueError(f"unknown holder kind {kind!r}")
    # RFC 2104 by hand, so each value costs two hash copies instead of a new HMAC object.
    block = hub_key if len(hub_key) <= 64 else hashlib.sha256(hub_key).digest()
    block = block.ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in block) + f"{kind}:".encode())
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
    return inner, outer


def holder_key(hub_key: bytes, kind: HolderKind, canonical_id: str) -> str:
    """Hex HMAC-SHA256 of ``"<kind>:<canonical id>"`` under the hub key: the lake's holder key."""
    inner, outer = _hmac_pads(hub_key, kind)
    if not isinstance(canonical_id, str) or not re.fullmatch(
        _CANONICAL_PATTERN[kind], canonical_id
    ):
        raise ValueError("holder_key needs the canonical identifier (validate it first)")
    inner.update(canonical_id.encode("ascii"))
    outer.update(inner.digest())
    return outer.hexdigest()


def holder_keys(hub_key: bytes, kind: HolderKind, canonical: StringValues) -> pa.Array:
    """:func:`holder_key` for each value of a column of canonical identifiers; nulls stay null."""
    inner, outer = _hmac_pads(hub_key, kind)
    array = _as_large_string(canonical)
    present = array.drop_null()
    # RE2 (Arrow's regex engine): "$" is the end of the text, not before a final newline.
    pattern = f"^{_CANONICAL_PATTERN[kind]}$"
    if pc.all(pc.match_substring_regex(present, pattern)).as_py() is False:
        raise ValueError("holder_keys needs canonical identifiers (validate them first)")
    digests: list[bytes] = []
    append, inner_copy, outer_copy = digests.append, inner.copy, outer.copy
    for value in present.cast(pa.large_binary()).to_pylist():
        h = inner_copy()
        h.update(value)
        o = outer_copy()
        o.update(h.digest())
        append(o.digest())
    hex_bytes = binascii.hexlify(b"".join(digests))
    valid = ~_null_mask(array)
    return _fixed_width_strings(valid, hex_bytes, 64)


# --- column checks -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ColumnCheck:
    """Per row: the canonical form (null where invalid) and the reason code (null where valid).

    A null input gives null in both: whether a value is required is the catalog's not-null rule.
    """

    canonical: pa.Array
    reason: pa.Array

    @property
    def rejected(self) -> pa.Array:
        """Boolean mask of the rows that failed a check."""
        return self.reason.is_valid()


@dataclass(frozen=True)
class _Folded:
    """A string column after :func:`_fold`, as UTF-8 bytes and int64 offsets."""

    data: U8
    offsets: I64
    null: Bools
    char_len: I64
    byte_len: I64

    def rows(self, which: I64, width: int) -> U8:
        """The bytes of rows ``which`` (each exactly ``width`` bytes long) as a matrix."""
        matrix: U8 = self.data[self.offsets[which][:, None] + np.arange(width)]
        return matrix


def check_resident_ids(
    values: StringValues, *, today: date | None = None, divisions: DivisionTable | None = None
) -> ColumnCheck:
    """Vectorised :func:`validate_resident_id` over a column."""
    folded = _fold_column(values)
    n = folded.null.size
    reason = np.zeros(n, dtype=np.int8)  # 0 = passed so far; else 1 + index in RESIDENT_ID_REASONS

    def fail(mask: Bools, code: str) -> None:
        reason[(reason == 0) & mask] = RESIDENT_ID_REASONS.index(code) + 1

    fail(~np.isin(folded.char_len, (15, 18)), "id_length")
    ascii_ = folded.char_len == folded.byte_len
    long_rows = np.flatnonzero(ascii_ & (folded.byte_len == 18))
    legacy_rows = np.flatnonzero(ascii_ & (folded.byte_len == 15))
    fail(~ascii_, "id_charset")

    canon = np.zeros((n, 18), dtype=np.uint8)
    canon[long_rows] = folded.rows(long_rows, 18)
    legacy_bytes = folded.rows(legacy_rows, 15)
    canon[legacy_rows, :6] = legacy_bytes[:, :6]
    canon[legacy_rows, 6:8] = np.frombuffer(b"19", dtype=np.uint8)
    canon[legacy_rows, 8:17] = legacy_bytes[:, 6:]
    digits = canon - np.uint8(ord("0"))  # wraps below "0", so one comparison tests a digit
    is_digit = digits <= 9
    legacy = np.zeros(n, dtype=np.bool_)
    legacy[legacy_rows] = True
    charset_ok = is_digit[:, :17].all(axis=1) & (
        is_digit[:, 17] | (canon[:, 17] == ord("X")) | legacy
    )
    fail(~charset_ok, "id_charset")

    digits[~charset_ok] = 0  # keep the arithmetic below in range on rows already rejected
    weights = np.array([pow(2, 17 - i, 11) for i in range(17)], dtype=np.int64)
    check = (12 - _weighted_sum(digits[:, :17], weights) % 11) % 11
    check_char = np.where(check == 10, ord("X"), ord("0") + check).astype(np.uint8)
    canon[legacy, 17] = check_char[legacy]
    fail(canon[:, 17] != check_char, "id_check_char")

    year = _number(digits, 6, 4)
    month = _number(digits, 10, 2)
    day = _number(digits, 12, 2)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
    days = month_days[np.clip(month, 0, 12)] + ((month == 2) & leap)
    today = today or date.today()
    ymd = year * 10000 + month * 100 + day
    real_date = (month >= 1) & (month <= 12) & (day >= 1) & (day <= days)
    in_range = (year >= MIN_BIRTH_YEAR) & (
        ymd <= today.year * 10000 + today.month * 100 + today.day
    )
    fail(~(real_date & in_range), "id_birth_date")

    by_code, by_province = _region_tables(
        divisions if divisions is not None else load_division_table()
    )
    permanent_residence = ~legacy & (digits[:, 0] == 9)
    last_year = np.where(
        permanent_residence, by_province[_number(digits, 1, 2)], by_code[_number(digits, 0, 6)]
    )
    fail(year > last_year, "id_region")

    return _column_check(folded.null, reason, canon, RESIDENT_ID_REASONS)


def check_credit_codes(values: StringValues) -> ColumnCheck:
    """Vectorised :func:`validate_credit_code` over a column."""
    folded = _fold_column(values)
    n = folded.null.size
    reason = np.zeros(n, dtype=np.int8)

    def fail(mask: Bools, code: str) -> None:
        reason[(reason == 0) & mask] = CREDIT_CODE_REASONS.index(code) + 1

    fail(folded.char_len != 18, "uscc_length")
    ascii_ = folded.char_len == folded.byte_len
    rows = np.flatnonzero(ascii_ & (folded.byte_len == 18))
    fail(~ascii_, "uscc_charset")
    canon = np.zeros((n, 18), dtype=np.uint8)
    canon[rows] = folded.rows(rows, 18)
    values_ = _uscc_values()[canon]
    fail(np.any(values_ < 0, axis=1), "uscc_charset")
    fail(~np.all((canon[:, :8] >= ord("0")) & (canon[:, :8] <= ord("9")), axis=1), "uscc_format")
    weights = np.array([pow(3, i, 31) for i in range(17)], dtype=np.int64)
    check = (31 - _weighted_sum(np.maximum(values_[:, :17], 0), weights) % 31) % 31
    fail(values_[:, 17] != check, "uscc_check_char")
    return _column_check(folded.null, reason, canon, CREDIT_CODE_REASONS)


def check_holder_ids(
    kinds: str | StringValues,
    values: StringValues,
    *,
    today: date | None = None,
    divisions: DivisionTable | None = None,
) -> ColumnCheck:
    """Vectorised :func:`validate_holder_id`: one kind for the column, or a column of kinds."""
    if isinstance(kinds, str):
        if kinds == "natural_person":
            return check_resident_ids(values, today=today, divisions=divisions)
        if kinds == "legal_person":
            return check_credit_codes(values)
        array = _as_large_string(values)
        kinds = pa.repeat(pa.scalar(kinds, pa.large_string()), len(array))
    kind_array = _as_large_string(kinds)
    array = _as_large_string(values)
    if len(kind_array) != len(array):
        raise ValueError("kinds and values must have the same length")
    person = check_resident_ids(array, today=today, divisions=divisions)
    legal = check_credit_codes(array)
    is_person = pc.fill_null(pc.equal(kind_array, "natural_person"), False)
    is_legal = pc.fill_null(pc.equal(kind_array, "legal_person"), False)
    bad_kind = pc.and_(pc.invert(pc.or_(is_person, is_legal)), array.is_valid())
    null = pa.scalar(None, pa.string())
    canonical = pc.if_else(is_person, person.canonical, pc.if_else(is_legal, legal.canonical, null))
    reason = pc.if_else(
        is_person,
        person.reason,
        pc.if_else(is_legal, legal.reason, pc.if_else(bad_kind, HOLDER_KIND_REASON, null)),
    )
    return ColumnCheck(canonical=canonical, reason=reason)


# --- column plumbing -----------------------------------------------------------------------------
def _as_large_string(values: str | StringValues) -> pa.Array:
    if isinstance(values, str):
        raise TypeError("expected a column of strings, got one str")
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.array([], pa.large_string())
    if not isinstance(values, pa.Array):
        try:
            values = pa.array(values, type=pa.large_string())
        except (pa.ArrowTypeError, pa.ArrowInvalid, UnicodeEncodeError) as exc:
            raise TypeError(f"expected a column of strings: {exc}") from None
    kind = values.type
    if pa.types.is_null(kind) or pa.types.is_string(kind) or pa.types.is_string_view(kind):
        return values.cast(pa.large_string())
    if pa.types.is_large_string(kind):
        return values
    raise TypeError(f"expected a column of strings, got {kind}")


def _null_mask(array: pa.Array) -> Bools:
    return np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=np.bool_)


def _fold_column(values: StringValues) -> _Folded:
    """:func:`_fold` over a column, on the UTF-8 bytes."""
    array = _as_large_string(values)
    null = _null_mask(array)
    if array.null_count:
        # Arrow lets a null slot hold any bytes; blank them so they cannot leak into neighbours.
        array = pc.fill_null(array, "")
    _, offsets_buffer, data_buffer = array.buffers()
    n = len(array)
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[array.offset : array.offset + n + 1]
    if data_buffer is None or n == 0:
        data = np.zeros(0, dtype=np.uint8)
    else:
        data = np.frombuffer(data_buffer, dtype=np.uint8)[offsets[0] : offsets[-1]]
    offsets = (offsets - offsets[0]) if n else np.zeros(1, dtype=np.int64)
    # Most columns are already clean: touch the bytes only if one of them would change.
    if data.size and _CHANGING_BYTE[data].any():
        data, offsets = _fold_bytes(data, offsets)
    byte_len = np.diff(offsets)
    char_len = byte_len
    if data.size and data.max() >= 0x80:
        # Count characters as non-continuation bytes; continuation bytes are rare here.
        continuation = np.flatnonzero((data & 0xC0) == 0x80)
        char_len = byte_len - np.diff(np.searchsorted(continuation, offsets))
    return _Folded(data=data, offsets=offsets, null=null, char_len=char_len, byte_len=byte_len)


def _fold_bytes(data: U8, offsets: I64) -> tuple[U8, I64]:
    """The byte-level :data:`_FOLD`: full-width to ASCII, separators out, a-z up."""
    data = data.copy()
    keep = np.ones(data.size, dtype=np.bool_)
    if data.size >= 3:
        # Full-width forms U+FF01..U+FF5E are EF BC 81..BF and EF BD 80..9E; each becomes the
        # ASCII byte it stands for. 0xEF and 0xE3 are always lead bytes in UTF-8, so a match
        # starts a character.
        lead = np.flatnonzero(data[:-2] == 0xEF)
        second, third = data[lead + 1], data[lead + 2]
        upper = (second == 0xBC) & (third >= 0x81) & (third <= 0xBF)
        lower = (second == 0xBD) & (third >= 0x80) & (third <= 0x9E)
        hit = upper | lower
        data[lead[hit]] = np.where(upper[hit], third[hit] - 0x60, third[hit] - 0x20)
        keep[lead[hit] + 1] = False
        keep[lead[hit] + 2] = False
        lead = np.flatnonzero(data[:-2] == 0xE3)  # U+3000 ideographic space is E3 80 80
        hit = (data[lead + 1] == 0x80) & (data[lead + 2] == 0x80)
        data[lead[hit]] = ord(" ")
        keep[lead[hit] + 1] = False
        keep[lead[hit] + 2] = False
    keep &= ~_SEPARATOR_BYTE[data]
    data[(data >= ord("a")) & (data <= ord("z"))] -= 0x20
    # Each offset moves back by the number of bytes dropped before it.
    dropped = np.flatnonzero(~keep)
    return data[keep], offsets - np.searchsorted(dropped, offsets)


def _weighted_sum(matrix: npt.NDArray[np.integer[Any]], weights: I64) -> I64:
    """Row sums of ``matrix * weights``, a column at a time to keep temporaries small."""
    out = np.zeros(matrix.shape[0], dtype=np.int64)
    for column, weight in enumerate(weights.tolist()):
        out += matrix[:, column].astype(np.int64) * weight
    return out


def _number(digits: U8, start: int, width: int) -> I64:
    """The decimal number in columns ``start:start+width`` of a digit matrix."""
    out = np.zeros(digits.shape[0], dtype=np.int64)
    for column in range(start, start + width):
        out = out * 10 + digits[:, column]
    return out


@functools.cache
def _uscc_values() -> npt.NDArray[np.int8]:
    """Byte -> index in the credit code alphabet, -1 outside it."""
    table = np.full(256, -1, dtype=np.int8)
    for index, char in enumerate(_USCC_ALPHABET):
        table[ord(char)] = index
    return table


@functools.lru_cache(maxsize=4)
def _region_tables(table: DivisionTable) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.int16]]:
    """:func:`_last_birth_year` for every 6-digit code and every permanent-residence province."""
    by_code = np.full(1_000_000, _REJECT, dtype=np.int16)
    for code in (*table, *RESIDENCE_PERMIT_CODES):
        by_code[int(code)] = _last_birth_year(table, code, permanent_residence=False)
    by_province = np.array(
        [_last_birth_year(table, f"9{p:02d}000", permanent_residence=True) for p in range(100)],
        dtype=np.int16,
    )
    return by_code, by_province


def _column_check(
    null: Bools, reason: npt.NDArray[np.int8], canon: U8, reasons: Sequence[str]
) -> ColumnCheck:
    valid = ~null & (reason == 0)
    canonical = _fixed_width_strings(valid, canon[valid].tobytes(), 18)
    codes = pa.array(reasons, type=pa.string())
    indices = pa.array(np.maximum(reason.astype(np.int32) - 1, 0), mask=null | (reason == 0))
    return ColumnCheck(canonical=canonical, reason=codes.take(indices))


def _fixed_width_strings(valid: Bools, data: bytes, width: int) -> pa.Array:
    """A string array whose valid rows are consecutive ``width``-byte slices of ``data``."""
    n = valid.size
    lengths = np.where(valid, width, 0)
    offsets = np.concatenate((np.zeros(1, dtype=np.int64), np.cumsum(lengths, dtype=np.int64)))
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little").tobytes())
    null_count = int(n - np.count_nonzero(valid))
    if offsets[-1] < 2**31:
        buffers = [bitmap, pa.py_buffer(offsets.astype(np.int32).tobytes()), pa.py_buffer(data)]
        return pa.Array.from_buffers(pa.string(), n, buffers, null_count=null_count)
    buffers = [bitmap, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data)]
    return pa.Array.from_buffers(pa.large_string(), n, buffers, null_count=null_count)
