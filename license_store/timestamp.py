"""XML Schema dateTimeStamp values, as VC 2.0 and Data Integrity write them."""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from typing import Final

from catalog_schemas.errors import ValidationFailedError

# Year, month, day, time, optional fraction, then a mandatory zone: a *Stamp* has an offset.
_DATE_TIME_STAMP: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})"
)
MAX_CHARS: Final = 40


def format_timestamp(moment: dt.datetime) -> str:
    """Write an aware datetime as UTC ``YYYY-MM-DDTHH:MM:SSZ`` (whole seconds)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValidationFailedError("a timestamp needs a time zone; pass an aware datetime")
    # isoformat, not strftime: a fraction of its cost, and four-digit years below 1000 too.
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")[:-6] + "Z"


def parse_timestamp(text: object) -> dt.datetime:
    """Parse an XML Schema dateTimeStamp into an aware datetime, or raise ValidationFailedError."""
    if not isinstance(text, str) or len(text) > MAX_CHARS:
        raise ValidationFailedError("not a dateTimeStamp string")
    # Verifying a batch sees the same few timestamps over and over (issuance time, validity
    # days); datetimes are immutable, so a parsed one is shared.
    return _parse(text)


@lru_cache(maxsize=4096)
def _parse(text: str) -> dt.datetime:
    match = _DATE_TIME_STAMP.fullmatch(text)
    if match is None:
        raise ValidationFailedError("not a dateTimeStamp (YYYY-MM-DDThh:mm:ss[.f](Z|+hh:mm))")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        offset = dt.timedelta(0)
        if zone != "Z":
            sign = -1 if zone[0] == "-" else 1
            hours, minutes = int(zone[1:3]), int(zone[4:6])
            if hours > 14 or minutes > 59:
                raise ValueError("offset out of range")
            offset = sign * dt.timedelta(hours=hours, minutes=minutes)
        return dt.datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            micro,
            tzinfo=dt.timezone(offset),
        )
    except ValueError:
        raise ValidationFailedError("dateTimeStamp is not a real date and time") from None
