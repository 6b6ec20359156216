"""maintenance: the hub's daily upkeep.

- ``expire``: licenses past their validity become expired; then ``status_lists`` publishes the
  status lists.
- ``lake_upkeep``: compacts every lake table and vacuums old files beyond the retention
  (``ONEHUB_LAKE_RETENTION_HOURS``, default a week), once issuance has read the change feed.
- ``supervise``: yellow and red cards for every source (效能監督); a new card fails the task,
  so the deployment's failure alerts (mail or chat) carry it.
- ``key_rotation``: fails as a reminder when the signing key is older than
  ``ONEHUB_KEY_ROTATION_DAYS`` (default 365).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from airflow.sdk import dag, task

from onehub.dag_defaults import MAINTENANCE_SCHEDULE, START, default_args, fatal_fails_task


def _optional_step(step: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run a step that another part of OneHub provides; skipped (not failed) if not installed."""
    from airflow.sdk.exceptions import AirflowSkipException

    from onehub.runtime import StepUnavailableError

    with fatal_fails_task():
        try:
            return step()
        except StepUnavailableError as exc:
            raise AirflowSkipException(exc.message) from exc


@dag(
    dag_id="maintenance",
    schedule=MAINTENANCE_SCHEDULE,
    start_date=START,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(hours=4),
    default_args=default_args(),
    tags=["onehub", "maintenance", "supervision"],
    doc_md=__doc__,
)
def maintenance() -> None:
    @task(task_id="expire")
    def expire() -> dict[str, Any]:
        from onehub.runtime import run_expiry_sweep

        return _optional_step(run_expiry_sweep)

    @task(task_id="status_lists", trigger_rule="none_failed")
    def status_lists() -> dict[str, Any]:
        from onehub.runtime import run_status_lists

        return _optional_step(run_status_lists)

    @task(task_id="lake_upkeep")
    def lake_upkeep() -> dict[str, Any]:
        from onehub.runtime import run_lake_upkeep

        with fatal_fails_task():
            return run_lake_upkeep()

    @task(task_id="supervise")
    def supervise() -> dict[str, Any]:
        from onehub.runtime import run_supervision

        with fatal_fails_task():
            return run_supervision()

    @task(task_id="key_rotation")
    def key_rotation() -> dict[str, Any]:
        from onehub.runtime import run_key_reminder

        with fatal_fails_task():
            return run_key_reminder()

    expire() >> status_lists()
    lake_upkeep()
    supervise()
    key_rotation()


maintenance()
