"""bench/quality_gate.py runs, and its pyarrow checks agree with the gate row for row.

The benchmark's lower bound is only a fair comparison if it does the same work: here, on small
batches with every kind of dirty row, both sides must reject the same rows for the same reasons.
No timing is asserted.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "quality_gate.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_quality_gate", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("code", ["social_insurance_certificate", "marriage_certificate"])
def test_pyarrow_lower_bound_agrees_with_the_gate(code: str) -> None:
    bench = _bench()
    result = bench.measure(code, rows=3000, repeats=1)
    assert result["agree"] is True
    assert 20 <= result["rejected"] <= 60  # about 1 % of 3 000 rows, every kind present
    assert result["gx_wall"] > 0 and result["arrow_wall"] > 0
