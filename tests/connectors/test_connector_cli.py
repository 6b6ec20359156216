"""`onehub sources ingest` (progress bar) and `onehub sources status` (watermark, counts, lag)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from connector_department import T0, Rec, SqlDepartment
from typer.testing import CliRunner

from onehub.cli import app


def test_ingest_shows_progress_and_status_shows_watermark_counts_and_lag(tmp_path: Path) -> None:
    dept = SqlDepartment(f"sqlite:///{tmp_path / 'dlr.db'}", "sqlite")
    try:
        dept.write([Rec(i, 1, T0 + dt.timedelta(minutes=i)) for i in range(1, 8)])
        env = {
            "ONEHUB_DATA_DIR": str(tmp_path / "data"),
            "ONEHUB_DEPARTMENTS_DIR": str(tmp_path / "departments"),
            "ONEHUB_CONN_DLR_REGISTRY": dept.url,
            "COLUMNS": "200",
        }
        runner = CliRunner()
        assert runner.invoke(app, ["init"], env=env).exit_code == 0

        ingested = runner.invoke(app, ["sources", "ingest", "dlr_title"], env=env)

        assert ingested.exit_code == 0, ingested.output
        assert "rows/s" in ingested.stderr and "7 rows" in ingested.stderr
        report = json.loads(ingested.stdout)
        assert (report["rows_in"], report["rows_loaded"]) == (7, 7)

        dept.write([Rec(i, 1, T0 + dt.timedelta(hours=3, minutes=7)) for i in (20, 21)])
        status = runner.invoke(app, ["sources", "status", "--json"], env=env)

        assert status.exit_code == 0, status.output
        rows = {r["source"]: r for r in json.loads(status.stdout)}
        dlr = rows["dlr_title"]
        assert dlr["status"] == "success"
        assert dlr["watermark"].startswith("2016-03-23") and "09:07" in dlr["watermark"]
        assert (dlr["rows_in"], dlr["rows_loaded"], dlr["rows_quarantined"]) == (7, 7, 0)
        assert (dlr["lag"], dlr["waiting"], dlr["waiting_unit"]) == ("3 h", 2, "rows")
        # Sources whose systems are not there still get a row, their lag unknown.
        assert rows["dca_marriage"]["status"] == "never run"
        assert rows["dca_marriage"]["lag"] == "unknown (source_database_missing)"
        assert rows["edu_degree"]["lag"] == "unknown (drop_folder_missing)"
        assert not (tmp_path / "departments").exists()

        table = runner.invoke(app, ["sources", "status"], env=env)
        assert table.exit_code == 0
        assert "dlr_title" in table.stdout and "3 h" in table.stdout and "2 rows" in table.stdout
    finally:
        dept.close()
