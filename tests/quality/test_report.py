"""Quality runs: counts in the hub database, Data Docs without values, summaries, pass rates."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa
from quality_data import marriage_batch, wrong_check_char
from sqlalchemy.orm import Session

from catalog_schemas.catalog import shipped_catalog
from quality import Gate, GateResult, RunRecorder, metadata, pass_rates, report_root
from quality.model import QualityCheck, QualityRun
from quality.report import HELD, REPLAY, list_runs

TODAY = dt.date(2026, 11, 5)
T0 = dt.datetime(2026, 11, 5, 9, 0, tzinfo=dt.UTC)
LICENSE = shipped_catalog().license_type("marriage_certificate")


@pytest.fixture
def session(hub_db_url: str) -> Iterator[Session]:
    engine = sa.create_engine(hub_db_url)
    metadata.create_all(engine)
    with Session(engine) as s:
        yield s
    engine.dispose()


def _dirty(n: int, seed: int, bad: dict[int, dict[str, Any]]) -> tuple[pa.Table, list[str]]:
    """A marriage batch with rows changed as ``bad`` says; and every ID and name in it."""
    table = marriage_batch(n, seed=seed)
    rows = table.to_pylist()
    for i, changes in bad.items():
        rows[i].update(changes)
    values = [
        str(r[k])
        for r in rows
        for k in ("party_a_id", "party_b_id", "party_a_name", "party_b_name")
        if r[k]
    ]
    return pa.Table.from_pylist(rows, schema=table.schema), values


def _batches(gate: Gate) -> tuple[list[GateResult], list[str]]:
    first, values1 = _dirty(
        30,
        1,
        {
            0: {"party_a_id": wrong_check_char(str(marriage_batch(1, seed=1)["party_a_id"][0]))},
            1: {"party_b_name": None, "party_a_name": "秘密姓名"},
            2: {"registration_date": None, "_errors": ["bad_date:registration_date"]},
        },
    )
    second, values2 = _dirty(20, 2, {5: {"certificate_no": "bad_no"}})
    return [gate.check(first), gate.check(second)], values1 + values2


def test_recorder_counts_in_the_db_and_writes_docs_without_values(
    session: Session, tmp_path: Path
) -> None:
    gate = Gate(LICENSE, today=TODAY)
    results, values = _batches(gate)
    recorder = RunRecorder(gate, source="dca_marriage", root=str(tmp_path / "q"), threshold=0.05)
    run_id = recorder.record(session=session, batch_seq=1, result=results[0], now=T0)
    assert (
        recorder.record(
            session=session, batch_seq=2, result=results[1], now=T0 + dt.timedelta(minutes=1)
        )
        == run_id
    )
    session.commit()
    page = recorder.write()
    assert page == str(tmp_path / "q" / "dca_marriage" / str(run_id) / "index.html")

    run = session.get(QualityRun, run_id)
    assert run is not None
    assert (run.kind, run.status, run.batches, run.rows_in) == ("ingest", "passed", 2, 50)
    assert (run.rows_good, run.rows_rejected, run.report_uri) == (46, 4, page)
    assert run.reasons["id_check_char:party_a_id"] == 1
    checks = {
        (c.batch_seq, c.reason): c
        for c in session.scalars(sa.select(QualityCheck).where(QualityCheck.run_id == run_id))
    }
    assert len(checks) == 2 * len(gate.suite.expectations) + 1  # + the one mapping reason
    assert checks[(1, "id:party_a_id")].unexpected_count == 1
    assert checks[(1, "id:party_a_id")].element_count == 30
    assert checks[(2, "pattern:certificate_no")].unexpected_count == 1
    mapped = checks[(1, "bad_date:registration_date")]
    assert (mapped.expectation, mapped.unexpected_count, mapped.element_count) == ("mapping", 1, 30)

    summary = json.loads(Path(page).with_name("summary.json").read_text(encoding="utf-8"))
    assert (summary["rows_in"], summary["rows_good"], summary["rows_rejected"]) == (50, 46, 4)
    by_reason = {e["reason"]: e for e in summary["expectations"]}
    assert by_reason["not_null:party_b_name"]["unexpected_count"] == 1
    assert by_reason["not_null:party_b_name"]["pass_rate"] == pytest.approx(49 / 50)
    assert summary["mapping"] == [
        {"reason": "bad_date:registration_date", "unexpected_count": 1, "pass_rate": 0.98}
    ]

    html = Path(page).read_text(encoding="utf-8")
    assert "Unsuccessful Expectations" in html and "valid resident identity numbers" in html
    text = html + json.dumps(summary, ensure_ascii=False)
    assert [v for v in values if v in text] == []  # no ID number, no name
    assert "秘密姓名" not in text


def test_held_batch_and_replay_runs(session: Session, tmp_path: Path) -> None:
    gate = Gate(LICENSE, today=TODAY)
    results, _ = _batches(gate)
    held = RunRecorder(gate, source="dca_marriage", root=str(tmp_path))
    held.record(session=session, batch_seq=1, result=results[0], now=T0, held=7, ingest_run_id=3)
    replay = RunRecorder(gate, source="dca_marriage", kind=REPLAY, root=None)
    replay.record(session=session, batch_seq=1, result=results[1], now=T0)
    session.commit()
    assert replay.write() is None  # no root, no files
    runs = {r.kind: r for r in list_runs(session=session)}
    assert (runs["ingest"].status, runs["ingest"].ingest_run_id) == (HELD, 3)
    assert runs["ingest"].rows_good == 0  # nothing of a held batch is published
    assert held.summary()["held_batches"] == [7]
    assert runs["replay"].report_uri is None
    assert {r.kind for r in pass_rates(session=session, kinds=("ingest", "replay"))} == {
        "ingest",
        "replay",
    }
    assert {r.kind for r in pass_rates(session=session)} == {"ingest"}


def test_pass_rates_per_run_and_check(session: Session) -> None:
    gate = Gate(LICENSE, today=TODAY)
    results, _ = _batches(gate)
    for day, source in ((1, "dca_marriage"), (2, "dca_marriage"), (3, "other")):
        recorder = RunRecorder(gate, source=source)
        now = T0 + dt.timedelta(days=day)
        recorder.record(session=session, batch_seq=1, result=results[0], now=now)
        recorder.record(session=session, batch_seq=2, result=results[1], now=now)
    session.commit()
    rates = pass_rates(session=session, source="dca_marriage")
    assert len({r.run_id for r in rates}) == 2
    ids = [r for r in rates if r.reason == "id:party_a_id"]
    assert [(r.element_count, r.unexpected_count) for r in ids] == [(50, 1), (50, 1)]
    assert ids[0].rate == pytest.approx(0.98)
    later = pass_rates(session=session, since=T0 + dt.timedelta(days=2))
    assert {(r.source, r.started_at.day) for r in later} == {("dca_marriage", 7), ("other", 8)}


def test_report_root_is_beside_the_lake(tmp_path: Path) -> None:
    assert report_root(str(tmp_path / "data" / "lake")) == str(tmp_path / "data" / "quality")
    assert report_root(str(tmp_path / "data" / "lake") + "/") == str(tmp_path / "data" / "quality")
    assert report_root("s3://bucket/onehub/lake") == "s3://bucket/onehub/quality"


def test_docs_written_through_a_filesystem_uri(session: Session, tmp_path: Path) -> None:
    gate = Gate(LICENSE, today=TODAY)
    results, _ = _batches(gate)
    root = report_root(f"file://{tmp_path}/lake")
    assert root == f"file://{tmp_path}/quality"
    recorder = RunRecorder(gate, source="dca_marriage", root=root)
    run_id = recorder.record(session=session, batch_seq=1, result=results[0], now=T0)
    assert recorder.write() == f"{root}/dca_marriage/{run_id}/index.html"
    assert (tmp_path / "quality" / "dca_marriage" / str(run_id) / "summary.json").is_file()
