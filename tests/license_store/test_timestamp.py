"""dateTimeStamp text: written as UTC with whole seconds, read back to the same instant."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog_schemas.errors import ValidationFailedError
from license_store.credential import end_of_day, start_of_day, valid_from_text, valid_until_text
from license_store.timestamp import format_timestamp, parse_timestamp

aware = st.datetimes(
    min_value=dt.datetime(1, 1, 2),
    max_value=dt.datetime(9999, 12, 30),
    timezones=st.sampled_from(
        [
            dt.UTC,
            dt.timezone(dt.timedelta(hours=8)),
            dt.timezone(dt.timedelta(hours=-9, minutes=-30)),
        ]
    ),
)


@given(aware)
def test_a_timestamp_reads_back_as_the_same_whole_second(moment: dt.datetime) -> None:
    text = format_timestamp(moment)
    assert text.endswith("Z") and len(text) == 20
    assert parse_timestamp(text) == moment.replace(microsecond=0)


@given(aware)
def test_the_text_is_what_strftime_writes_from_year_1000(moment: dt.datetime) -> None:
    utc = moment.astimezone(dt.UTC)
    if utc.year >= 1000:
        assert format_timestamp(moment) == utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_years_before_1000_keep_four_digits() -> None:
    # glibc's strftime writes "999"; XML Schema (and parse_timestamp) need four digits.
    assert format_timestamp(dt.datetime(999, 5, 1, 8, tzinfo=dt.UTC)) == "0999-05-01T08:00:00Z"


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValidationFailedError, match="time zone"):
        format_timestamp(dt.datetime(2026, 11, 27, 2))


@given(st.dates(min_value=dt.date(1, 1, 2), max_value=dt.date(9999, 12, 30)))
def test_validity_texts_are_the_timestamps_of_the_first_and_last_second_in_china(
    day: dt.date,
) -> None:
    # valid_from_text and valid_until_text compute the text directly; it must be what
    # format_timestamp writes of the instants themselves.
    assert valid_from_text(day) == format_timestamp(start_of_day(day))
    assert valid_until_text(day) == format_timestamp(end_of_day(day))
    assert parse_timestamp(valid_from_text(day)) == dt.datetime.combine(
        day, dt.time(0, 0), dt.timezone(dt.timedelta(hours=8))
    )
