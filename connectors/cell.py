"""The text form of one source value, the same whichever database or file it came from.

Connectors hand the pipeline strings only, so that the mapping has one input type and the same
row reads the same on SQLite, MariaDB and PostgreSQL:

- numbers (int, float, Decimal): plain decimal notation, no exponent, no trailing fractional
  zeros (``Decimal("120.50")``, ``120.5`` -> ``"120.5"``; ``100.0`` -> ``"100"``), because the
  backends disagree on scale (SQLite keeps a NUMERIC as a REAL);
- booleans: ``"1"``/``"0"``, because MariaDB has no boolean type and returns 1/0;
- dates and datetimes: ISO 8601 (``2016-03-23``, ``2016-03-23T10:00:00``); SQLite has no date
  type, so its stored text is passed on as it is (the mapping's date parser reads both);
- bytes: lower-case hex; JSON objects and lists: compact JSON; anything else: ``str()``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc


def cell_text(value: Any) -> str | None:
    """The canonical text of ``value`` (None stays None)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return repr(value)
        return _plain(decimal.Decimal(repr(value)))
    if isinstance(value, decimal.Decimal):
        return _plain(value) if value.is_finite() else str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return str(value)


def _plain(number: decimal.Decimal) -> str:
    text = format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def column_text(values: Sequence[Any]) -> pa.Array:
    """``[cell_text(v) for v in values]`` as a string array, vectorised for uniform columns.

    A column of only str, int, naive whole-second datetimes or dates (the bulk of real tables)
    is converted by Arrow in one call; anything else goes value by value. Both give the same text.
    """
    kinds = {type(v) for v in values} - {type(None)}
    if kinds <= {str}:
        return pa.array(values, pa.string())
    if kinds == {int}:
        try:
            return pc.cast(pa.array(values, pa.int64()), pa.string())
        except OverflowError:
            pass  # beyond int64: the slow path below writes it exactly
    elif kinds == {dt.datetime}:
        stamps = pa.array(values)
        if pa.types.is_timestamp(stamps.type) and stamps.type.tz is None:
            whole = pc.all(pc.equal(pc.microsecond(stamps), 0)).as_py() is not False
            if whole:
                seconds = stamps.cast(pa.timestamp("s"))
                return pc.strftime(seconds, format="%Y-%m-%dT%H:%M:%S")
    elif kinds == {dt.date}:
        return pc.cast(pa.array(values, pa.date32()), pa.string())
    return pa.array([cell_text(v) for v in values], pa.string())
