"""issue_licenses: scheduled on every lake table's Asset; turns new lake records into e-licenses.

Any ingest DAG that publishes its table's Asset queues a run; one run reads the change feed of
every table from its cursor, so several ingests finishing together need only one issuance.
"""

from __future__ import annotations

import datetime as dt
from functools import reduce
from operator import or_
from typing import Any

from airflow.sdk import Asset, dag, task

from catalog_schemas.catalog import load_catalog
from onehub.dag_defaults import START, default_args, fatal_fails_task, lake_asset_ref
from onehub.settings import Settings

_catalog = load_catalog(Settings().catalog_dir)
_assets = [Asset(*lake_asset_ref(code)) for code in sorted(_catalog.license_types)]


@dag(
    dag_id="issue_licenses",
    schedule=reduce(or_, _assets),
    start_date=START,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(hours=4),
    default_args=default_args(),
    tags=["onehub", "issuance"],
    doc_md=__doc__,
)
def issue_licenses() -> None:
    @task(task_id="issue")
    def issue() -> dict[str, Any]:
        from onehub.runtime import run_issuance

        with fatal_fails_task():
            return run_issuance()

    issue()


issue_licenses()
