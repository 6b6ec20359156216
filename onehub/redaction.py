"""Logging set-up for entry points, with a filter that masks anything shaped like an ID number."""

from __future__ import annotations

import logging
import re

# 18-digit resident IDs (last char may be X), 15-digit legacy IDs, 18-char credit codes.
_ID_SHAPE = re.compile(
    r"(?<![0-9A-Za-z])(?:\d{17}[\dXx]|\d{15}|[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10})(?![0-9A-Za-z])"
)


def redact(text: str) -> str:
    """Mask ID numbers and credit codes in ``text`` (keep the 6-digit prefix)."""

    def _mask(match: re.Match[str]) -> str:
        whole = match.group(0)
        return whole[:6] + "*" * (len(whole) - 6)

    return _ID_SHAPE.sub(_mask, text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with ID-shaped substrings masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def configure_logging(level: int = logging.INFO) -> None:
    """Configure the root logger once for an entry point, redaction included."""
    root = logging.getLogger()
    if not root.handlers:  # under Airflow the task runner has its handlers already
        stream = logging.StreamHandler()
        stream.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(stream)
    root.setLevel(level)
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
