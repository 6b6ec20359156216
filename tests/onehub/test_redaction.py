from __future__ import annotations

import logging

import pytest

from onehub.redaction import RedactingFilter, redact


@pytest.mark.parametrize(
    "value", ["11010519491231002X", "44011320141005001x", "610104620927690", "91110000600037341L"]
)
def test_id_shaped_values_are_masked(value: str) -> None:
    out = redact(f"holder {value} applied")
    assert value not in out and value[:6] in out


def test_other_numbers_and_holder_keys_survive() -> None:
    text = "12345 rows, key 3fa9c0d1e2b4a5968778695a4b3c2d1e0f1a2b3c4d5e6f708192a3b4c5d6e7f8"
    assert redact(text) == text


def test_filter_rewrites_records(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("onehub.test")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO):
        logger.info("lookup for %s", "11010519491231002X")
    assert "11010519491231002X" not in caplog.text
