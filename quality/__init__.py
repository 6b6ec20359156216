"""Quality: GX suites from the catalog, the gate (good rows vs rejected ones), quarantine."""

from quality.gate import Gate, GateError, GateInputError, GateResult
from quality.quarantine import QuarantineRow, decrypt_row, list_rows, metadata, record_rejected
from quality.suite import build_suite

__all__ = [
    "Gate",
    "GateError",
    "GateInputError",
    "GateResult",
    "QuarantineRow",
    "build_suite",
    "decrypt_row",
    "list_rows",
    "metadata",
    "record_rejected",
]
