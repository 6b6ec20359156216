"""Quality: GX suites from the catalog, the gate, quarantine and held batches, reports.

Exports resolve lazily (PEP 562): the tables in ``quality.model`` and the quarantine functions
must be importable without paying for great_expectations, which only the gate and the reports
need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from quality.gate import Gate, GateError, GateInputError, GateResult, disable_batch_fingerprint
    from quality.quarantine import (
        HeldBatch,
        HeldRow,
        QuarantineRow,
        decrypt_row,
        hold_batch,
        list_rows,
        metadata,
        record_rejected,
    )
    from quality.report import RunRecorder, pass_rates, report_root
    from quality.suite import build_suite

_HOME = {
    "Gate": "quality.gate",
    "GateError": "quality.gate",
    "GateInputError": "quality.gate",
    "GateResult": "quality.gate",
    "disable_batch_fingerprint": "quality.gate",
    "HeldBatch": "quality.quarantine",
    "HeldRow": "quality.quarantine",
    "QuarantineRow": "quality.quarantine",
    "decrypt_row": "quality.quarantine",
    "hold_batch": "quality.quarantine",
    "list_rows": "quality.quarantine",
    "metadata": "quality.quarantine",
    "record_rejected": "quality.quarantine",
    "RunRecorder": "quality.report",
    "pass_rates": "quality.report",
    "report_root": "quality.report",
    "build_suite": "quality.suite",
}

__all__ = [
    "Gate",
    "GateError",
    "GateInputError",
    "GateResult",
    "HeldBatch",
    "HeldRow",
    "QuarantineRow",
    "RunRecorder",
    "build_suite",
    "decrypt_row",
    "disable_batch_fingerprint",
    "hold_batch",
    "list_rows",
    "metadata",
    "pass_rates",
    "record_rejected",
    "report_root",
]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'quality' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOME[name]), name)
