"""The quality gate (great_expectations) against the same checks done directly in pyarrow/numpy.

On the same mapped batch of synthetic rows, in the same process, alternating run by run:

* **GX gate**: ``quality.Gate.check`` — the catalog's GX suite, the custom vectorised ID
  expectations, reason collection, canonical IDs, the report.
* **pyarrow lower bound**: the same checks written straight in pyarrow.compute and numpy
  (:func:`arrow_checks`): not-null, lengths, patterns, code sets, ranges, date order,
  license-number uniqueness, the same vectorised ID checks (catalog_schemas.holder), and the
  mapping's reasons; it yields the same (row, reason) list and nothing else.
* **GX gate with the batch fingerprint on**: GX's default (an MD5 over the whole batch, which
  the gate turns off; see quality.gate).

Both sides must reject exactly the same rows for exactly the same reasons (checked each run).
About 1 % of the rows are dirty, of every kind the suite checks. Wall and CPU seconds are the
median of the runs; the machine is shared, so CPU time is the steadier figure.

    .venv/bin/python bench/quality_gate.py [--rows 1000000] [--repeats 5]

Results go to bench/results/quality_gate.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from great_expectations.execution_engine import pandas_execution_engine

from catalog_schemas.catalog import shipped_catalog
from catalog_schemas.holder import check_credit_codes, check_resident_ids
from catalog_schemas.model import LicenseType
from quality import Gate
from quality.suite import unique_column

TODAY = dt.date(2026, 11, 27)
RESULTS = Path(__file__).resolve().parent / "results" / "quality_gate.md"
LICENSE_TYPES = ("social_insurance_certificate", "marriage_certificate")

_WEIGHTS = np.array([pow(2, 17 - i, 11) for i in range(17)], dtype=np.int64)
_REGIONS = np.array([440103, 440104, 440105, 440106, 440111, 440112, 440113, 440114, 440115])
_EPOCH = np.datetime64("1970-01-01", "D")


# --- synthetic mapped batches ---------------------------------------------------------------------


def _resident_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    region = rng.choice(_REGIONS, n)
    birth = np.datetime64("1955-01-01") + rng.integers(0, 45 * 365, n).astype("timedelta64[D]")
    ymd = np.char.replace(np.datetime_as_string(birth, unit="D"), "-", "")
    seq = np.char.zfill(rng.integers(0, 1000, n).astype(str), 3)
    body = np.char.add(np.char.add(region.astype(str), ymd), seq)
    digits = np.frombuffer(body.astype("S17").tobytes(), dtype=np.uint8).reshape(n, 17) - 48
    check = (12 - (digits.astype(np.int64) @ _WEIGHTS) % 11) % 11
    return np.char.add(body, np.where(check == 10, "X", check.astype(str))).astype(object)


def _wrong_check(ids: np.ndarray) -> np.ndarray:
    last = np.array([v[-1] for v in ids])
    return np.char.add(
        np.array([v[:-1] for v in ids], dtype=str), np.where(last == "1", "2", "1")
    ).astype(object)


def _dates(days: np.ndarray) -> pa.Array:
    return pa.array(days.astype(np.int32), pa.int32()).cast(pa.date32())


def _days(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


def make_batch(code: str, n: int, *, seed: int = 1, dirty: float = 0.01) -> pa.Table:
    """``n`` mapped rows of ``code`` with ``dirty`` of them spoilt, spread over every kind."""
    rng = np.random.default_rng(seed)
    k = max(2, int(n * dirty / 7))
    pick = rng.permutation(n)
    parts = [pick[i * k : (i + 1) * k] for i in range(7)]
    errors: list[list[str]] = [[] for _ in range(n)]
    columns: dict[str, Any] = {}
    if code == "social_insurance_certificate":
        ids = _resident_ids(rng, n)
        ids[parts[0]] = _wrong_check(ids[parts[0]])
        names = np.full(n, "参保人", dtype=object)
        names[parts[1]] = None
        scheme = rng.choice(np.array(["pension", "medical", "unemployment", "work_injury"]), n)
        scheme = scheme.astype(object)
        scheme[parts[2]] = "maternity"
        months = rng.integers(0, 1201, n)
        months[parts[3]] = 1500
        enrolled = rng.integers(_days(dt.date(2000, 1, 1)), _days(dt.date(2025, 12, 1)), n)
        issue = np.full(n, _days(dt.date(2026, 1, 10)))
        until = issue + 90
        until[parts[4]] = issue[parts[4]] - 1
        numbers = np.char.add("SI-", np.arange(n).astype(str)).astype(object)
        numbers[parts[5][1::2]] = numbers[parts[5][0::2][: len(parts[5][1::2])]]
        enrolled_valid = np.ones(n, dtype=bool)
        enrolled_valid[parts[6]] = False
        for i in parts[6].tolist():
            errors[i].append("bad_date:enrolled_since")
        columns = {
            "certificate_no": pa.array(numbers, pa.string()),
            "insured_id": pa.array(ids, pa.string()),
            "insured_name": pa.array(names, pa.string()),
            "insurance_scheme": pa.array(scheme, pa.string()),
            "enrolled_since": pa.array(
                enrolled.astype(np.int32), pa.int32(), mask=~enrolled_valid
            ).cast(pa.date32()),
            "months_paid": pa.array(months, pa.int64()),
            "issue_date": _dates(issue),
            "valid_until": _dates(until),
        }
    elif code == "marriage_certificate":
        a, b = _resident_ids(rng, n), _resident_ids(rng, n)
        a[parts[0]] = _wrong_check(a[parts[0]])
        b[parts[1]] = np.array([v[:17] for v in b[parts[1]]], dtype=object)
        name_b = np.full(n, "李四", dtype=object)
        name_b[parts[2]] = None
        numbers = np.char.add("J440106-", np.arange(n).astype(str)).astype(object)
        numbers[parts[3]] = "j440106_x"
        numbers[parts[4][1::2]] = numbers[parts[4][0::2][: len(parts[4][1::2])]]
        office = np.full(n, "广州市天河区民政局", dtype=object)
        office[parts[5]] = "局" * 129
        reg = rng.integers(_days(dt.date(2000, 1, 1)), _days(dt.date(2026, 1, 1)), n)
        reg_valid = np.ones(n, dtype=bool)
        reg_valid[parts[6]] = False
        for i in parts[6].tolist():
            errors[i].append("bad_date:registration_date")
        columns = {
            "certificate_no": pa.array(numbers, pa.string()),
            "party_a_id": pa.array(a, pa.string()),
            "party_a_name": pa.array(np.full(n, "张三", dtype=object), pa.string()),
            "party_b_id": pa.array(b, pa.string()),
            "party_b_name": pa.array(name_b, pa.string()),
            "registration_date": pa.array(reg.astype(np.int32), pa.int32(), mask=~reg_valid).cast(
                pa.date32()
            ),
            "registration_office": pa.array(office, pa.string()),
        }
    else:
        raise ValueError(f"no generator for {code}")
    columns["_row_ref"] = pa.array(np.arange(n).astype(str).astype(object), pa.string())
    columns["_errors"] = pa.array(errors, pa.list_(pa.string()))
    return pa.table(columns)


# --- the same checks in pyarrow/numpy -------------------------------------------------------------


def arrow_checks(table: pa.Table, lt: LicenseType, today: dt.date) -> tuple[np.ndarray, pa.Array]:
    """(row, reason) of every failure, mapping reasons first, then in the suite's order."""
    rows: list[np.ndarray] = []
    reasons: list[pa.Array] = []

    def add(mask: Any, reason: str) -> None:
        hit = np.flatnonzero(np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False)))
        rows.append(hit)
        reasons.append(pa.array(np.full(hit.size, reason, dtype=object), pa.string()))

    errors = table.column("_errors").combine_chunks()
    flat = pc.list_flatten(errors)
    rows.append(pc.list_parent_indices(errors).to_numpy().astype(np.int64))
    reasons.append(flat)
    for spec in lt.fields:
        col = table.column(spec.name).combine_chunks()
        if spec.required:
            add(pc.is_null(col), f"not_null:{spec.name}")
        if spec.max_length is not None:
            add(pc.greater(pc.utf8_length(col), spec.max_length), f"max_length:{spec.name}")
        if spec.pattern is not None:
            add(pc.invert(pc.match_substring_regex(col, spec.pattern)), f"pattern:{spec.name}")
        if spec.codes is not None:
            known = pa.array(sorted(spec.codes), pa.string())
            add(pc.invert(pc.is_in(col, value_set=known)), f"in_set:{spec.name}")
        if spec.min is not None or spec.max is not None:
            low = pc.less(col, spec.min) if spec.min is not None else pa.nulls(len(col), pa.bool_())
            high = (
                pc.greater(col, spec.max)
                if spec.max is not None
                else pa.nulls(len(col), pa.bool_())
            )
            add(pc.or_kleene(low, high), f"range:{spec.name}")
        if spec.type in ("resident_id", "credit_code"):
            check = (
                check_resident_ids(col, today=today)
                if spec.type == "resident_id"
                else check_credit_codes(col)
            )
            hit = np.flatnonzero(check.reason.is_valid().to_numpy(zero_copy_only=False))
            rows.append(hit)
            reasons.append(pc.binary_join_element_wise(check.reason.drop_null(), spec.name, ":"))
    for earlier, later in lt.date_order:
        add(
            pc.less(table.column(later).combine_chunks(), table.column(earlier).combine_chunks()),
            f"date_order:{earlier}<={later}",
        )
    no = lt.license_no_field
    assert unique_column(lt) == no, "the bench covers license numbers that are not ID numbers"
    numbers = table.column(no).combine_chunks()
    counts = pc.value_counts(numbers)
    repeated = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
    add(pc.is_in(numbers, value_set=repeated), f"duplicate:{no}")
    all_rows = np.concatenate(rows)
    all_reasons = pa.concat_arrays([r.cast(pa.string()) for r in reasons])
    order = np.argsort(all_rows, kind="stable")
    return all_rows[order], all_reasons.take(pa.array(order))


def _gate_pairs(gate: Gate, table: pa.Table) -> tuple[np.ndarray, list[str]]:
    result = gate.check(table)
    rejected = result.rejected
    refs = np.asarray(rejected.column("_row_ref").to_pylist(), dtype=np.int64)
    out_rows: list[int] = []
    out_reasons: list[str] = []
    for ref, why in zip(refs.tolist(), rejected.column("_reasons").to_pylist(), strict=True):
        out_rows += [ref] * len(why)
        out_reasons += why
    return np.asarray(out_rows, dtype=np.int64), out_reasons


def _timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, value


def measure(code: str, rows: int, repeats: int = 5) -> dict[str, Any]:
    """Median wall/CPU seconds of each side on ``rows`` rows, and whether they agree."""
    lt = shipped_catalog().license_type(code)
    table = make_batch(code, rows)
    gate = Gate(lt, today=TODAY)
    gate.check(table.slice(0, 1000))  # warm up GX's registries and the ID lookup tables
    arrow_checks(table.slice(0, 1000), lt, TODAY)
    samples: dict[str, list[tuple[float, float]]] = {"gx": [], "arrow": [], "gx_fingerprint": []}
    agree = True
    rejected = 0
    for _ in range(repeats):
        wall, cpu, (g_rows, g_reasons) = _timed(lambda: _gate_pairs(gate, table))
        samples["gx"].append((wall, cpu))
        wall, cpu, (a_rows, a_reasons) = _timed(lambda: arrow_checks(table, lt, TODAY))
        samples["arrow"].append((wall, cpu))
        agree = agree and bool(
            np.array_equal(g_rows, a_rows) and g_reasons == a_reasons.to_pylist()
        )
        rejected = len(set(g_rows.tolist()))
        pandas_execution_engine.HASH_THRESHOLD = 1e9  # GX's default
        try:
            wall, cpu, _ = _timed(lambda: gate.check(table))
        finally:
            pandas_execution_engine.HASH_THRESHOLD = 0
        samples["gx_fingerprint"].append((wall, cpu))
    out: dict[str, Any] = {"license_type": code, "rows": rows, "rejected": rejected}
    out["expectations"] = len(gate.suite.expectations)
    out["agree"] = agree
    for name, values in samples.items():
        out[f"{name}_wall"] = statistics.median(v[0] for v in values)
        out[f"{name}_cpu"] = statistics.median(v[1] for v in values)
    out["ratio_wall"] = out["gx_wall"] / out["arrow_wall"]
    out["ratio_cpu"] = out["gx_cpu"] / out["arrow_cpu"]
    return out


def _markdown(results: list[dict[str, Any]], *, rows: int, repeats: int, command: str) -> str:
    import great_expectations as gx

    lines = [
        "# Quality gate: great_expectations vs the pyarrow lower bound",
        "",
        f"Command: `{command}`",
        "",
        f"Measured {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')} on "
        f"{platform.platform()}, {os.cpu_count()} cores (shared; load average before: "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}); Python {platform.python_version()},"
        f" great_expectations {gx.__version__}, pyarrow {pa.__version__}, numpy {np.__version__}.",
        "",
        f"{rows:,} mapped rows per license type, about 1 % dirty across every kind the suite "
        f"checks; median of {repeats} runs, the two sides alternating in one process. "
        "`agree`: both rejected the same rows for the same reasons in every run.",
        "",
        "| license type | expectations | rejected rows | GX gate wall / CPU s "
        "| pyarrow wall / CPU s | GX ÷ pyarrow wall / CPU | GX with fingerprint wall / CPU s "
        "| agree |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r['license_type']} | {r['expectations']} | {r['rejected']:,} "
            f"| {r['gx_wall']:.2f} / {r['gx_cpu']:.2f} | {r['arrow_wall']:.2f} / "
            f"{r['arrow_cpu']:.2f} | **{r['ratio_wall']:.1f}× / {r['ratio_cpu']:.1f}×** "
            f"| {r['gx_fingerprint_wall']:.2f} / {r['gx_fingerprint_cpu']:.2f} "
            f"| {'yes' if r['agree'] else 'NO'} |"
        )
    worst = max(max(r["ratio_wall"], r["ratio_cpu"]) for r in results)
    lines += [
        "",
        f"Target: the GX gate within 4× of the pyarrow lower bound. Worst ratio here: "
        f"{worst:.1f}× ({'met' if worst <= 4 else 'NOT met'}).",
        "",
        "The GX gate includes what the pyarrow side does not need to: building the pandas frame "
        "(dates cast to `datetime64[ns]`, since GX checks `datetime64[s]` row by row), GX's "
        "metric graph, and the gate's own bookkeeping (canonical ID forms, the report). The "
        "`fingerprint` column is GX's default of hashing every batch under 1 GB for its batch "
        "markers, which the gate turns off (quality/gate.py).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    results = []
    for code in LICENSE_TYPES:
        r = measure(code, args.rows, args.repeats)
        results.append(r)
        sys.stdout.write(
            f"{code}: GX {r['gx_wall']:.2f}s wall {r['gx_cpu']:.2f}s cpu | pyarrow "
            f"{r['arrow_wall']:.2f}s / {r['arrow_cpu']:.2f}s | ratio {r['ratio_wall']:.1f}× / "
            f"{r['ratio_cpu']:.1f}× | fingerprint on {r['gx_fingerprint_wall']:.2f}s | "
            f"agree {r['agree']}\n"
        )
    command = "bench/quality_gate.py " + " ".join(sys.argv[1:])
    text = _markdown(
        results, rows=args.rows, repeats=args.repeats, command=f".venv/bin/python {command}".strip()
    )
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text, encoding="utf-8")
        sys.stdout.write(f"wrote {RESULTS}\n")


if __name__ == "__main__":
    main()
