"""Defaults shared by OneHub's DAG files (plain data: this module does not import Airflow)."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def default_args() -> dict[str, Any]:
    """Task defaults: owner, two retries, and the retry delay.

    `onehub pipelines run` and the tests set ONEHUB_TASK_RETRY_DELAY_SECONDS low, so a failing
    task under dag.test() does not sit out Airflow's usual five minutes between retries.
    """
    delay = float(os.environ.get("ONEHUB_TASK_RETRY_DELAY_SECONDS", "300"))
    return {"owner": "onehub", "retries": 2, "retry_delay": dt.timedelta(seconds=delay)}


def lake_asset_ref(license_type: str) -> tuple[str, str]:
    """(name, uri) of the Airflow Asset for one license type's lake table."""
    return f"onehub_lake__{license_type}", f"onehub://lake/{license_type}"
