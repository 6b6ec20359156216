"""Quality runs: per-batch counts in the hub database, GX Data Docs and a JSON summary per run.

A :class:`RunRecorder` follows one run of the gate over a source (an ingest run or a replay).
After each batch it adds one :class:`~quality.model.QualityCheck` row per expectation and per
mapping reason, updates the run's totals, and (re)writes the run's report::

    <report root>/<source>/<run id>/index.html     GX Data Docs (validation results page)
    <report root>/<source>/<run id>/summary.json   the same counts as JSON

The report root is the ``quality`` folder beside the lake (:func:`report_root`): ``<data>/quality``
in the embedded profile, a sibling prefix of the lake in object storage.

No value of any row reaches a report. GX Data Docs normally list sample unexpected values; these
pages are rendered from results rebuilt from counts alone (element, missing and unexpected counts
summed over the run's batches), so there is nothing to list. The expectations' own parameters
(code sets, patterns) are catalog text and are shown.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import great_expectations as gx
import pyarrow.fs as pafs
import sqlalchemy as sa
from great_expectations.core.expectation_validation_result import (
    ExpectationSuiteValidationResult,
    ExpectationValidationResult,
)
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.render.renderer.page_renderer import ValidationResultsPageRenderer
from great_expectations.render.view.view import DefaultJinjaPageView
from sqlalchemy.orm import Session

from quality.gate import Gate, GateResult
from quality.model import QualityCheck, QualityRun

logger = logging.getLogger(__name__)

INGEST = "ingest"
REPLAY = "replay"
PASSED = "passed"
HELD = "held"
MAPPING = "mapping"


def report_root(lake_uri: str) -> str:
    """Where quality reports go: the ``quality`` folder beside the lake root."""
    trimmed = lake_uri.rstrip("/")
    if "://" in trimmed:
        return trimmed.rsplit("/", 1)[0] + "/quality"
    return str(Path(trimmed).resolve().parent / "quality")


def run_folder(root: str, source: str, run_id: int) -> str:
    """The folder of one run's report."""
    return f"{root.rstrip('/')}/{source}/{run_id}"


@dataclass
class _Totals:
    element: int = 0
    missing: int = 0
    unexpected: int = 0
    success: bool = True


@dataclass
class RunRecorder:
    """Counts of one quality run, recorded batch by batch; see the module docstring."""

    gate: Gate
    source: str
    kind: str = INGEST
    root: str | None = None
    threshold: float | None = None
    run_id: int | None = None
    started_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    status: str = PASSED
    batches: int = 0
    rows_in: int = 0
    rows_good: int = 0
    rows_rejected: int = 0
    held: list[int] = field(default_factory=list)
    _totals: list[_Totals] = field(default_factory=list)
    _mapping: collections.Counter[str] = field(default_factory=collections.Counter)
    _reasons: collections.Counter[str] = field(default_factory=collections.Counter)
    _entries: list[dict[str, Any]] = field(default_factory=list)
    _written: bool = False
    _view: Any = None

    def record(
        self,
        *,
        session: Session,
        batch_seq: int,
        result: GateResult,
        now: dt.datetime,
        held: int | None = None,
        ingest_run_id: int | None = None,
    ) -> int:
        """Add one gated batch (``held``: the held batch id if it was not published); the run id.

        Runs in the caller's transaction, so the counts commit with the quarantine rows.
        """
        report = result.report
        if self.run_id is None:
            run = QualityRun(
                source=self.source,
                license_type=self.gate.license_type.code,
                kind=self.kind,
                ingest_run_id=ingest_run_id,
                started_at=now,
                updated_at=now,
                status=PASSED,
                batches=0,
                rows_in=0,
                rows_good=0,
                rows_rejected=0,
                reasons={},
            )
            session.add(run)
            session.flush()
            self.run_id = run.id
            self.started_at = now
            self._totals = [_Totals() for _ in report["expectations"]]
            self._entries = [dict(e) for e in report["expectations"]]
        self.updated_at = now
        self.batches += 1
        self.rows_in += int(report["rows_in"])
        if held is None:
            self.rows_good += int(report["rows_good"])
        else:
            self.status = HELD
            self.held.append(held)
        self.rows_rejected += int(report["rows_rejected"])
        self._reasons.update({str(k): int(v) for k, v in report["reasons"].items()})
        self._mapping.update({str(k): int(v) for k, v in report.get("mapping", {}).items()})
        checks: list[dict[str, Any]] = []
        for totals, entry in zip(self._totals, report["expectations"], strict=True):
            totals.element += int(entry["element_count"])
            totals.missing += int(entry["missing_count"])
            totals.unexpected += int(entry["unexpected_count"])
            totals.success = totals.success and bool(entry["success"])
            checks.append(
                {
                    "reason": entry["reason"],
                    "expectation": entry["expectation"],
                    "columns": ",".join(entry["columns"]),
                    "element_count": int(entry["element_count"]),
                    "unexpected_count": int(entry["unexpected_count"]),
                }
            )
        for reason, count in sorted(report.get("mapping", {}).items()):
            checks.append(
                {
                    "reason": str(reason),
                    "expectation": MAPPING,
                    "columns": str(reason).split(":", 1)[-1],
                    "element_count": int(report["rows_in"]),
                    "unexpected_count": int(count),
                }
            )
        if checks:
            session.execute(
                sa.insert(QualityCheck),
                [
                    {**c, "run_id": self.run_id, "batch_seq": batch_seq, "held": held is not None}
                    for c in checks
                ],
            )
        session.execute(
            sa.update(QualityRun)
            .where(QualityRun.id == self.run_id)
            .values(
                updated_at=now,
                status=self.status,
                batches=self.batches,
                rows_in=self.rows_in,
                rows_good=self.rows_good,
                rows_rejected=self.rows_rejected,
                reasons=dict(self._reasons),
                report_uri=self.report_uri,
            )
            .execution_options(synchronize_session=False)
        )
        return self.run_id

    @property
    def report_uri(self) -> str | None:
        """The run's Data Docs page (``index.html``), once the run has an id and a root."""
        if self.root is None or self.run_id is None:
            return None
        return run_folder(self.root, self.source, self.run_id) + "/index.html"

    def summary(self) -> dict[str, Any]:
        """The run's JSON summary (counts only)."""
        expectations = []
        for totals, entry in zip(self._totals, self._entries, strict=True):
            expectations.append(
                {
                    "reason": entry["reason"],
                    "expectation": entry["expectation"],
                    "columns": entry["columns"],
                    "element_count": totals.element,
                    "missing_count": totals.missing,
                    "unexpected_count": totals.unexpected,
                    "pass_rate": _rate(totals.element, totals.unexpected),
                    "success": totals.success,
                }
            )
        mapping = [
            {
                "reason": reason,
                "unexpected_count": count,
                "pass_rate": _rate(self.rows_in, count),
            }
            for reason, count in sorted(self._mapping.items())
        ]
        return {
            "source": self.source,
            "license_type": self.gate.license_type.code,
            "suite": self.gate.suite.name,
            "run": self.run_id,
            "kind": self.kind,
            "status": self.status,
            "started_at": _iso(self.started_at),
            "updated_at": _iso(self.updated_at),
            "threshold": self.threshold,
            "batches": self.batches,
            "rows_in": self.rows_in,
            "rows_good": self.rows_good,
            "rows_rejected": self.rows_rejected,
            "held_batches": list(self.held),
            "expectations": expectations,
            "mapping": mapping,
            "reasons": dict(sorted(self._reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
            "data_docs": "index.html",
        }

    def validation_result(self) -> ExpectationSuiteValidationResult:
        """A GX suite result for the whole run, rebuilt from the counts (no values, no indexes)."""
        results = []
        configs = [e.configuration for e in self.gate.suite.expectations]
        for config, totals in zip(configs, self._totals, strict=True):
            nonmissing = totals.element - totals.missing
            results.append(
                ExpectationValidationResult(
                    success=totals.success,
                    expectation_config=config,
                    result={
                        "element_count": totals.element,
                        "missing_count": totals.missing,
                        "missing_percent": _pct(totals.missing, totals.element),
                        "unexpected_count": totals.unexpected,
                        "unexpected_percent": _pct(totals.unexpected, nonmissing),
                        "unexpected_percent_total": _pct(totals.unexpected, totals.element),
                        "unexpected_percent_nonmissing": _pct(totals.unexpected, nonmissing),
                    },
                )
            )
        passed = sum(1 for r in results if r.success)
        mapping = {f"mapping {k}": v for k, v in sorted(self._mapping.items())}
        return ExpectationSuiteValidationResult(
            success=passed == len(results) and not self._mapping,
            results=results,
            suite_name=self.gate.suite.name,
            statistics={
                "evaluated_expectations": len(results),
                "successful_expectations": passed,
                "unsuccessful_expectations": len(results) - passed,
                "success_percent": _pct(passed, len(results)) if results else None,
            },
            meta={
                "great_expectations_version": gx.__version__,
                "run_id": RunIdentifier(
                    run_name=f"{self.source} {self.kind} run {self.run_id}",
                    run_time=self.started_at,
                ),
                "batch_spec": {
                    "source": self.source,
                    "license_type": self.gate.license_type.code,
                    "status": self.status,
                    "batches": self.batches,
                    "rows_in": self.rows_in,
                    "rows_passed": self.rows_good,
                    "rows_rejected": self.rows_rejected,
                    "held_batches": ", ".join(str(h) for h in self.held) or "none",
                    **mapping,
                },
                "batch_markers": {"updated_at": _iso(self.updated_at)},
            },
        )

    def render(self) -> str:
        """The run's Data Docs page as HTML."""
        document = ValidationResultsPageRenderer().render(self.validation_result())
        if self._view is None:
            self._view = DefaultJinjaPageView()
        return str(self._view.render(document))

    def write(self) -> str | None:
        """(Re)write the run's Data Docs and summary; the page's location (None without a root)."""
        uri = self.report_uri
        if uri is None or self.root is None or self.run_id is None:
            return None
        folder = run_folder(self.root, self.source, self.run_id)
        _write_text(f"{folder}/index.html", self.render())
        _write_text(
            f"{folder}/summary.json",
            json.dumps(self.summary(), ensure_ascii=False, indent=1) + "\n",
        )
        if not self._written:
            self._written = True
            logger.info("quality report of %s run %d: %s", self.source, self.run_id, uri)
        return uri


def _write_text(uri: str, text: str) -> None:
    data = text.encode("utf-8")
    if "://" not in uri:
        path = Path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)  # a reader never sees half a page
        return
    fs, path_in_fs = pafs.FileSystem.from_uri(uri)
    fs.create_dir(path_in_fs.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path_in_fs) as out:
        out.write(data)


def _rate(total: int, failed: int) -> float | None:
    return None if total == 0 else round(1 - failed / total, 6)


def _pct(part: int, whole: int) -> float:
    return 0.0 if whole <= 0 else 100.0 * part / whole


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# --- pass rates over time ---------------------------------------------------------------------


@dataclass(frozen=True)
class PassRate:
    """One check of one run: how many rows it saw and how many failed it."""

    source: str
    run_id: int
    kind: str
    status: str
    started_at: dt.datetime
    reason: str
    expectation: str
    element_count: int
    unexpected_count: int

    @property
    def rate(self) -> float | None:
        """Share of rows that passed (None when the check saw no row)."""
        return _rate(self.element_count, self.unexpected_count)


def pass_rates(
    *,
    session: Session,
    source: str | None = None,
    since: dt.datetime | None = None,
    kinds: Sequence[str] = (INGEST,),
) -> list[PassRate]:
    """Per run and check: rows seen and failed, oldest run first."""
    query = (
        sa.select(
            QualityRun.source,
            QualityRun.id,
            QualityRun.kind,
            QualityRun.status,
            QualityRun.started_at,
            QualityCheck.reason,
            QualityCheck.expectation,
            sa.func.sum(QualityCheck.element_count),
            sa.func.sum(QualityCheck.unexpected_count),
        )
        .join(QualityCheck, QualityCheck.run_id == QualityRun.id)
        .where(QualityRun.kind.in_(list(kinds)))
        .group_by(
            QualityRun.source,
            QualityRun.id,
            QualityRun.kind,
            QualityRun.status,
            QualityRun.started_at,
            QualityCheck.reason,
            QualityCheck.expectation,
        )
        .order_by(QualityRun.started_at, QualityRun.id, QualityCheck.reason)
    )
    if source is not None:
        query = query.where(QualityRun.source == source)
    if since is not None:
        query = query.where(QualityRun.started_at >= since)
    return [
        PassRate(
            source=row[0],
            run_id=int(row[1]),
            kind=row[2],
            status=row[3],
            started_at=row[4],
            reason=row[5],
            expectation=row[6],
            element_count=int(row[7] or 0),
            unexpected_count=int(row[8] or 0),
        )
        for row in session.execute(query)
    ]


def list_runs(
    *, session: Session, source: str | None = None, limit: int = 50
) -> Sequence[QualityRun]:
    """The newest quality runs, of one source or all."""
    query = sa.select(QualityRun).order_by(QualityRun.id.desc()).limit(limit)
    if source is not None:
        query = query.where(QualityRun.source == source)
    return session.scalars(query).all()
