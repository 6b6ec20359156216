"""Column conversions of the source mapping, vectorised with pyarrow.compute.

Every parser returns the converted array and a numpy boolean mask of the rows that held a value
and failed; the mapping turns each mask into a reason code (``bad_date:<field>`` ...), so no
value ever becomes null silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from catalog_schemas.errors import FatalError

Mask = npt.NDArray[np.bool_]

_FULLWIDTH = "[\uff01-\uff5e\u3000]"
_FULLWIDTH_OFFSET = 0xFEE0  # U+FF01..U+FF5E minus this is U+0021..U+007E

# The date forms read without a format. Times and zones after the date are accepted and
# ignored: a license field is a calendar date as the department wrote it.
_TIME = r"(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)?)?"
_DATE_FORMS = (
    r"^\s*(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})"
    + _TIME
    + r"\s*$",  # 2016-3-23, 2016/3/23
    r"^\s*(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})\s*$",  # 20160323
    r"^\s*(?P<y>\d{4})\s*年\s*(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*日\s*$",  # 2016年3月23日
)
_DIRECTIVES = {
    "%Y": r"(?P<y>\d{4})",
    "%m": r"(?P<m>\d{1,2})",
    "%d": r"(?P<d>\d{1,2})",
    "%H": r"\d{1,2}",
    "%M": r"\d{1,2}",
    "%S": r"\d{1,2}",
    "%f": r"\d{1,9}",
    "%z": r"(?:Z|[+-]\d{2}:?\d{2})",
    "%%": "%",
}
_RE2_SPECIAL = re.compile(r"([.^$*+?()\[\]{}|\\])")

_INTEGER = r"^\s*[+-]?\d{1,18}(?:\.0*)?\s*$"  # "12.0" is how spreadsheets write 12
_DECIMAL = r"^\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*$"
_GROUPED = r"^\s*[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?\s*$"  # 1,234,567.89


def as_text(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``values`` as one string array (dates as ISO text, numbers as written by Arrow)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values if pa.types.is_string(values.type) else pc.cast(values, pa.string())


def blank_to_null(values: pa.Array) -> pa.Array:
    """Empty and whitespace-only strings become null."""
    blank = pc.equal(pc.utf8_trim_whitespace(values), "")
    return pc.if_else(blank, pa.scalar(None, pa.string()), values)


def trim(values: pa.Array) -> pa.Array:
    """Strip leading and trailing (Unicode) whitespace, ideographic space included."""
    return pc.utf8_trim_whitespace(values)


def upper(values: pa.Array) -> pa.Array:
    """Upper-case (``x`` check characters of ID numbers become ``X``)."""
    return pc.utf8_upper(values)


def halfwidth(values: pa.Array) -> pa.Array:
    """Full-width ASCII (U+FF01–U+FF5E) and the ideographic space (U+3000) to half-width."""
    has = pc.fill_null(pc.match_substring_regex(values, _FULLWIDTH), False)
    if not pc.any(has).as_py():
        return values
    # One pass over the UTF-8 bytes: each 3-byte full-width character becomes its 1-byte ASCII
    # twin and the offsets shift by the bytes removed before them. (pyarrow has no translate;
    # one replace_substring per character took 2.4 s per million IDs.)
    validity, offsets_buf, data_buf = values.buffers()
    data = np.frombuffer(data_buf, dtype=np.uint8)
    offsets = np.frombuffer(offsets_buf, dtype=np.int32)[: len(values) + values.offset + 1]
    lead = np.flatnonzero(data[:-2] == 0xEF) if len(data) > 2 else np.array([], dtype=np.int64)
    second, third = data[lead + 1], data[lead + 2]
    code = 0xF000 | ((second.astype(np.int32) & 0x3F) << 6) | (third.astype(np.int32) & 0x3F)
    full = (code >= 0xFF01) & (code <= 0xFF5E)
    starts = lead[full]
    ascii_ = (code[full] - _FULLWIDTH_OFFSET).astype(np.uint8)
    space = np.flatnonzero((data[:-2] == 0xE3) & (data[1:-1] == 0x80) & (data[2:] == 0x80))
    starts = np.concatenate([starts, space])
    replaced = np.concatenate([ascii_, np.full(len(space), 0x20, dtype=np.uint8)])
    order = np.argsort(starts)
    starts, replaced = starts[order], replaced[order]
    out = data.copy()
    out[starts] = replaced
    out = np.delete(out, np.concatenate([starts + 1, starts + 2]))
    # Two bytes go per replaced character: an offset moves back by two per start before it.
    removed = 2 * np.searchsorted(starts, offsets, side="left")
    new_offsets = (offsets - removed).astype(np.int32)
    return pa.Array.from_buffers(
        pa.string(),
        len(values),
        [validity, pa.py_buffer(new_offsets), pa.py_buffer(out)],
        offset=values.offset,
    )


def date_format_regex(date_format: str) -> str:
    """An RE2 pattern with groups y, m, d for a strptime-style ``date_format``."""
    parts = re.split(r"(%.)", date_format)
    pattern = []
    for part in parts:
        if part.startswith("%") and len(part) == 2:
            if part not in _DIRECTIVES:
                raise FatalError(
                    f"date_format {date_format!r}: directive {part} is not supported "
                    f"(supported: {' '.join(sorted(_DIRECTIVES))})",
                    code="mapping_invalid",
                )
            pattern.append(_DIRECTIVES[part])
        else:
            pattern.append(_RE2_SPECIAL.sub(r"\\\1", part))
    for needed in ("%Y", "%m", "%d"):
        if parts.count(needed) != 1:
            raise FatalError(
                f"date_format {date_format!r} must contain {needed} exactly once",
                code="mapping_invalid",
            )
    return r"^\s*" + "".join(pattern) + r"\s*$"


def parse_date(values: pa.Array, date_format: str | None = None) -> tuple[pa.Array, Mask]:
    """Strings to date32: the auto-detected forms, or ``date_format``; impossible dates fail."""
    forms = (date_format_regex(date_format),) if date_format else _DATE_FORMS
    y = m = d = pa.nulls(len(values), pa.string())
    for form in forms:
        found = pc.extract_regex(values, form)
        y, m, d = (
            pc.coalesce(old, pc.struct_field(found, k)) for old, k in ((y, "y"), (m, "m"), (d, "d"))
        )
        if not pc.any(pc.and_(pc.is_valid(values), pc.is_null(y))).as_py():
            break  # a column mostly keeps to one form: the other patterns need not run
    dates = _calendar_date(y, m, d)
    return dates, _failed(values, dates)


def _calendar_date(y: pa.Array, m: pa.Array, d: pa.Array) -> pa.Array:
    """Year, month and day digit strings to date32; null where they name no real date."""
    matched = pc.is_valid(y).to_numpy(zero_copy_only=False)
    yi, mi, di = (
        pc.fill_null(pc.cast(a, pa.int64()), 0).to_numpy(zero_copy_only=False) for a in (y, m, d)
    )
    ok = matched & (yi >= 1) & (yi <= 9999) & (mi >= 1) & (mi <= 12) & (di >= 1)
    months = np.where(ok, (yi - 1970) * 12 + (mi - 1), 0)
    first = months.astype("datetime64[M]").astype("datetime64[D]")
    following = (months + 1).astype("datetime64[M]").astype("datetime64[D]")
    ok &= di <= (following - first).astype(np.int64)
    days = (first - np.datetime64("1970-01-01", "D")).astype(np.int64) + di - 1
    return pa.array(np.where(ok, days, 0).astype(np.int32), type=pa.date32(), mask=~ok)


def parse_integer(values: pa.Array) -> tuple[pa.Array, Mask]:
    """Strings to int64 (``12``, ``+12``, ``12.0``); anything else fails."""
    ok = pc.fill_null(pc.match_substring_regex(values, _INTEGER), False)
    cleaned = pc.replace_substring_regex(pc.utf8_trim_whitespace(values), r"^\+|\.0*$", "")
    numbers = pc.cast(pc.if_else(ok, cleaned, pa.scalar(None, pa.string())), pa.int64())
    return numbers, _failed(values, numbers)


def parse_decimal(values: pa.Array) -> tuple[pa.Array, Mask]:
    """Strings to float64 (``12.5``, ``1e3``, ``1,234.5``); anything else, or not finite, fails."""
    grouped = pc.fill_null(pc.match_substring_regex(values, _GROUPED), False)
    values_ = pc.if_else(grouped, pc.replace_substring(values, ",", ""), values)
    ok = pc.fill_null(pc.match_substring_regex(values_, _DECIMAL), False)
    cleaned = pc.replace_substring_regex(pc.utf8_trim_whitespace(values_), r"^\+", "")
    numbers = pc.cast(pc.if_else(ok, cleaned, pa.scalar(None, pa.string())), pa.float64())
    numbers = pc.if_else(pc.is_finite(numbers), numbers, pa.scalar(None, pa.float64()))
    return numbers, _failed(values, numbers)


def to_integer(values: pa.Array) -> tuple[pa.Array, Mask]:
    """Float64 to int64 where the value is whole; fractions fail."""
    whole = pc.equal(pc.floor(values), values)
    numbers = pc.cast(pc.if_else(whole, values, pa.scalar(None, pa.float64())), pa.int64())
    return numbers, _failed(values, numbers)


def map_codes(values: pa.Array, codes: Mapping[str, str]) -> tuple[pa.Array, Mask]:
    """Source codes to catalog codes through ``codes``; an unmapped code fails."""
    index = pc.index_in(values, value_set=pa.array(list(codes), pa.string()))
    mapped = pa.array(list(codes.values()), pa.string()).take(index)
    return mapped, _failed(values, mapped)


def check_codes(values: pa.Array, allowed: Iterable[str]) -> tuple[pa.Array, Mask]:
    """Keep values that are catalog codes already; any other value fails."""
    known = pc.is_in(values, value_set=pa.array(sorted(allowed), pa.string()))
    kept = pc.if_else(known, values, pa.scalar(None, pa.string()))
    return kept, _failed(values, kept)


def _failed(before: pa.Array, after: pa.Array) -> Mask:
    """Rows that held a value before and hold none after."""
    lost = pc.and_(pc.is_valid(before), pc.is_null(after))
    return np.asarray(lost.to_numpy(zero_copy_only=False), dtype=np.bool_)
