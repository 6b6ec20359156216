"""Time the quality gate on synthetic marriage rows (a measurement, not a test).

Run: ``.venv/bin/python tests/quality/gate_timing.py [rows] [repeats]`` (default 1 000 000 rows,
3 repeats). Prints the median of the whole ``Gate.check`` and of its parts: shape checks and the
pandas frame, the GX validation alone, and one column of resident ID checks.
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from great_expectations.validator.v1_validator import Validator
from quality_data import marriage_batch

from catalog_schemas.catalog import shipped_catalog
from catalog_schemas.holder import check_resident_ids
from quality.gate import _RESULT_FORMAT, Gate


def measure(rows: int, repeats: int = 3) -> dict[str, float]:
    """Median seconds of the gate and its parts over ``repeats`` runs on ``rows`` rows."""
    table = marriage_batch(rows, seed=1)
    gate = Gate(shipped_catalog().license_type("marriage_certificate"), today=dt.date(2026, 11, 5))
    samples: dict[str, list[float]] = {"gate": [], "frame": [], "gx": [], "id_column": []}
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = gate.check(table)
        samples["gate"].append(time.perf_counter() - t0)
        assert result.report["rows_good"] == rows
        t0 = time.perf_counter()
        frame = gate._frame(gate._conform(table))
        samples["frame"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        Validator(
            batch_definition=gate._batch_definition,
            batch_parameters={"dataframe": frame},
            result_format=_RESULT_FORMAT,
        ).validate_expectation_suite(gate.suite)
        samples["gx"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        check_resident_ids(table.column("party_a_id"))
        samples["id_column"].append(time.perf_counter() - t0)
    return {name: statistics.median(values) for name, values in samples.items()}


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    k = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    for name, seconds in measure(n, k).items():
        sys.stdout.write(
            f"{name:10s} {seconds:7.3f} s  ({seconds / n * 1e6:6.3f} s per 1 M rows)\n"
        )
