"""Shared by OneHub's DAG files (Airflow puts the DAG folder on sys.path). Not a DAG itself."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Asset

DEFAULT_ARGS = {"owner": "onehub", "retries": 2, "retry_delay": dt.timedelta(minutes=5)}
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def lake_asset(license_type: str) -> Asset:
    """The Asset of one license type's lake table."""
    return Asset(name=f"onehub_lake__{license_type}", uri=f"onehub://lake/{license_type}")
