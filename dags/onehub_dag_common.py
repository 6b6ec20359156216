"""Shared by OneHub's DAG files (Airflow puts the DAG folder on sys.path). Not a DAG itself."""

from __future__ import annotations

import datetime as dt
import os

from airflow.sdk import Asset

# `onehub pipelines run` and the tests set a short delay so a failing task under dag.test()
# does not sit out Airflow's default five minutes between retries.
RETRY_DELAY = dt.timedelta(seconds=float(os.environ.get("ONEHUB_TASK_RETRY_DELAY_SECONDS", "300")))
DEFAULT_ARGS = {"owner": "onehub", "retries": 2, "retry_delay": RETRY_DELAY}
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def lake_asset(license_type: str) -> Asset:
    """The Asset of one license type's lake table."""
    return Asset(name=f"onehub_lake__{license_type}", uri=f"onehub://lake/{license_type}")
