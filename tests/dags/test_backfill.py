"""Backfill: re-running a past window of a source re-reads it, and the exactly-once lake merge
changes only what differs.

The department edits a record in place without touching its watermark (the case a backfill is
for): an incremental run cannot see it; a backfill from a point before that record's watermark,
run through the ingest DAG with its ``window_start`` param, re-reads the window, updates that
one lake row and issues one new license version. Re-running the same window changes nothing.
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sample_deployment import Deployment

from catalog_schemas.errors import FatalError
from exchange.lake import LakeTable
from exchange.model import IngestRun
from exchange.pipeline import ingest_source, issue_licenses
from license_store.model import License
from onehub.database import signer_for
from onehub.runtime import backfill_state, parse_window_start, run_ingest

SOURCE = "dca_marriage"
pytestmark = pytest.mark.airflow


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
    done = deployment.run("pipelines", "backfill", SOURCE, "--from", start.isoformat())
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert "ingest__dca__dca_marriage: success" in done.stdout
    run = _last_run(deployment)
    assert (run.status, run.rows_in, run.rows_loaded) == ("success", in_window, in_window)
    changes = lake.changes(after_version=version)
    updated = [
        r["record_key"] for r in changes.to_pylist() if r["_change_type"] == "update_postimage"
    ]
    assert len(updated) == 1 and changes.num_rows == 2  # pre- and post-image of one record
    assert _licenses(deployment) == first.rows_loaded + 1  # one new version, issued by Airflow
    assert lake.count() == first.rows_loaded
    # The watermark is back where it was: the next incremental run reads nothing.
    assert lake.committed_state(SOURCE) == reached

    # The same window again, without Airflow this time: everything re-read, nothing changed.
    version = lake.version()
    counts = run_ingest(SOURCE, window_start=start.isoformat())
    assert counts["rows_in"] == in_window and counts["backfill_from"] is not None
    assert lake.changes(after_version=version).num_rows == 0
    assert issue_licenses(hub, signer_for(hub)).issued == {}


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
