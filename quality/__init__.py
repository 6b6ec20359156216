"""Quality: GX suites from the catalog, the gate, quarantine and held batches, reports."""

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
