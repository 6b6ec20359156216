"""Backfill: re-running a past window of a source re-reads it, and the exactly-once lake merge
changes only what differs.

The department edits a record in place without touching its watermark (the case a backfill is
for): an incremental run cannot see it; a backfill from a point before that record's watermark
(``onehub.runtime.run_ingest`` with ``window_start``, which is what the ingest DAG's task calls
with its ``window_start`` param) re-reads the window, updates that one lake row, and issuance
makes one new license version. Re-running the same window changes nothing. The same backfill
through Airflow's REST API and a Celery worker is in tests/e2e/test_celery_executor.py.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa
from sample_deployment import Deployment
from typer.testing import CliRunner

from catalog_schemas.errors import FatalError
from exchange.issuance import issue_licenses
from exchange.lake import LakeTable
from exchange.model import IngestRun
from exchange.pipeline import ingest_source
from license_store.model import License
from onehub.cli import app
from onehub.database import signer_for
from onehub.redaction import redact
from onehub.runtime import backfill_state, parse_window_start, run_ingest

SOURCE = "dca_marriage"


def _last_run(deployment: Deployment) -> IngestRun:
    with deployment.hub.sessions() as session:
        return session.scalars(sa.select(IngestRun).order_by(IngestRun.id.desc()).limit(1)).one()


def _licenses(deployment: Deployment) -> int:
    with deployment.hub.sessions() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(License)) or 0


def test_a_backfill_rereads_the_window_and_changes_only_what_differs(
    deployment: Deployment,
) -> None:
    hub = deployment.hub
    source = hub.catalog.source(SOURCE)
    lake = LakeTable(hub.lake_uri, hub.catalog.license_type(source.license_type))
    first = ingest_source(hub, SOURCE)
    reached = lake.committed_state(SOURCE)
    issued = issue_licenses(hub, signer_for(hub))
    assert first.rows_loaded > 20
    assert issued.issued[source.license_type] == first.rows_loaded

    department = sa.create_engine(hub.resolve_connection(source.connector.connection))
    with department.begin() as conn:
        stamps = [
            r[0] for r in conn.execute(sa.text("SELECT updated_at FROM marriage_registration"))
        ]
        window_start = sorted(stamps)[len(stamps) // 2]  # the middle of the history
        reg_id, old_name = conn.execute(
            sa.text(
                "SELECT reg_id, male_name FROM marriage_registration WHERE updated_at = :t "
                "ORDER BY reg_id LIMIT 1"
            ),
            {"t": window_start},
        ).one()
        # Corrected in place: the department's system did not bump updated_at.
        conn.execute(
            sa.text("UPDATE marriage_registration SET male_name = :n WHERE reg_id = :id"),
            {"n": old_name + "明", "id": reg_id},
        )
        in_window = conn.execute(
            sa.text("SELECT count(*) FROM marriage_registration WHERE updated_at >= :t"),
            {"t": window_start},
        ).scalar_one()
    department.dispose()
    assert 0 < in_window < first.rows_in

    version = lake.version()
    incremental = ingest_source(hub, SOURCE)
    assert incremental.rows_in == 0  # the watermark hides the in-place edit
    assert lake.changes(after_version=version).num_rows == 0

    start = dt.datetime.fromisoformat(str(window_start))
    counts = run_ingest(SOURCE, window_start=start.isoformat())
    assert counts["backfill_from"] == start.isoformat()
    assert (counts["rows_in"], counts["rows_loaded"]) == (in_window, in_window)
    run = _last_run(deployment)
    assert (run.status, run.rows_in) == ("success", in_window)
    changes = lake.changes(after_version=version)
    updated = [
        r["record_key"] for r in changes.to_pylist() if r["_change_type"] == "update_postimage"
    ]
    assert len(updated) == 1 and changes.num_rows == 2  # pre- and post-image of one record
    assert issue_licenses(hub, signer_for(hub)).issued == {source.license_type: 1}
    assert _licenses(deployment) == first.rows_loaded + 1  # one new version
    assert lake.count() == first.rows_loaded
    # The watermark is back where it was: the next incremental run reads nothing.
    assert lake.committed_state(SOURCE) == reached
    assert ingest_source(hub, SOURCE).rows_in == 0

    # The same window again: everything in it re-read, nothing changed.
    version = lake.version()
    counts = run_ingest(SOURCE, window_start=start.isoformat())
    assert counts["rows_in"] == in_window
    assert lake.changes(after_version=version).num_rows == 0
    assert issue_licenses(hub, signer_for(hub)).issued == {}


def test_the_counts_for_xcom_are_numbers_and_names_only(deployment: Deployment) -> None:
    counts = run_ingest(SOURCE)
    text = json.dumps(counts)
    assert json.loads(text) == counts
    assert redact(text) == text  # nothing shaped like an ID number
    assert counts["rows_in"] == deployment.manifest.sources[SOURCE].rows
    for key, value in counts.items():
        assert isinstance(value, int | float | str | dict | type(None)), key
        assert not isinstance(value, str) or len(value) < 64, key


def test_backfill_refuses_a_bad_window_before_starting_airflow() -> None:
    result = CliRunner().invoke(
        app, ["pipelines", "backfill", SOURCE, "--from", "last tuesday"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 1
    assert "window_invalid" in result.output and "not an ISO date" in result.output


def test_backfill_state_writes_the_watermark_like_the_state_does() -> None:
    start = dt.datetime(2026, 1, 1, 9, 0)
    state = {"watermark": "2026-02-01 10:00:00.000000", "pk": 7, "null_pks": ["3"]}
    assert backfill_state(state, start) == {
        "watermark": "2026-01-01 08:59:59.999999",
        "pk": None,
        "null_pks": ["3"],
    }
    iso = backfill_state({"watermark": "2026-02-01T10:00:00", "pk": 7}, start)
    assert iso is not None and iso["watermark"] == "2026-01-01T08:59:59.999999"
    date = backfill_state({"watermark": "2026-02-01", "pk": 7}, start)
    assert date is not None and date["watermark"] == "2025-12-31"
    aware = backfill_state({"watermark": "2026-02-01T10:00:00+08:00", "pk": 7}, start)
    assert aware is not None and aware["watermark"] == "2026-01-01T08:59:59.999999+08:00"
    # A window after the watermark re-reads nothing: the state is left alone.
    assert backfill_state(state, dt.datetime(2026, 3, 1)) is None
    with pytest.raises(FatalError, match="date or date-time watermark"):
        backfill_state({"watermark": 1234, "pk": 1}, start)


def test_window_start_is_read_on_the_department_clock() -> None:
    assert parse_window_start(None) is None and parse_window_start("") is None
    assert parse_window_start("2026-01-01") == dt.datetime(2026, 1, 1)
    # An aware time (Airflow's UTC data interval) becomes China Standard Time, naive.
    assert parse_window_start("2026-01-01T00:00:00+00:00") == dt.datetime(2026, 1, 1, 8)
    with pytest.raises(FatalError, match="not an ISO"):
        parse_window_start("last tuesday")


def test_a_file_drop_is_not_backfilled_by_window(deployment: Deployment) -> None:
    from onehub.runtime import rewind_for_backfill

    with pytest.raises(FatalError, match="dropping its files again"):
        rewind_for_backfill(deployment.hub, "edu_degree", dt.datetime(2026, 1, 1))
