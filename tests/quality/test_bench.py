"""bench/quality_gate.py runs, and its pyarrow checks agree with the gate row for row.

The benchmark's lower bound is only a fair comparison if it does the same work: here, on small
batches with every kind of dirty row, both sides must reject the same rows for the same reasons.
No timing is asserted.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest


@pytest.mark.parametrize("code", ["social_insurance_certificate", "marriage_certificate"])
def test_pyarrow_lower_bound_agrees_with_the_gate(
    code: str, bench_script: Callable[[str], ModuleType]
) -> None:
    bench = bench_script("quality_gate")
    result = bench.measure(code, rows=3000, repeats=1)
    assert result["agree"] is True
    assert 20 <= result["rejected"] <= 60  # about 1 % of 3 000 rows, every kind present
    assert result["gx_wall"] > 0 and result["arrow_wall"] > 0
