"""column_text gives exactly the text cell_text gives, value by value, whatever the column holds."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.cell import cell_text, column_text

VALUES = st.one_of(
    st.none(),
    st.text(max_size=8),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31)),
    st.datetimes(timezones=st.just(dt.UTC)),
    st.dates(),
    st.decimals(allow_nan=False, places=2, max_value=10**6, min_value=-(10**6)),
    st.floats(allow_nan=False),
    st.booleans(),
    st.binary(max_size=4),
)


def uniform(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    return st.lists(st.one_of(st.none(), strategy), max_size=20)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        uniform(st.text(max_size=8)),
        uniform(st.integers(min_value=-(2**63), max_value=2**63 - 1)),
        uniform(st.datetimes().map(lambda d: d.replace(microsecond=0))),
        uniform(st.datetimes()),
        uniform(st.dates()),
        st.lists(VALUES, max_size=20),
    )
)
def test_column_text_equals_cell_text_value_by_value(values: list[Any]) -> None:
    assert column_text(values).to_pylist() == [cell_text(v) for v in values]


def test_the_text_of_common_values() -> None:
    values = [dt.datetime(2016, 3, 23, 9, 0), dt.datetime(2016, 3, 23, 9, 0, 0, 5)]
    assert column_text(values).to_pylist() == ["2016-03-23T09:00:00", "2016-03-23T09:00:00.000005"]
    assert column_text([decimal.Decimal("120.50"), 2**64, True]).to_pylist() == [
        "120.5",
        "18446744073709551616",
        "1",
    ]
