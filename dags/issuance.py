"""issue_licenses: scheduled on every lake table's Asset; turns new lake records into e-licenses."""

from __future__ import annotations

from functools import reduce
from operator import or_
from typing import Any

from airflow.sdk import Asset, dag, task

from catalog_schemas.catalog import load_catalog
from onehub.dag_defaults import START, default_args, lake_asset_ref
from onehub.settings import Settings

_catalog = load_catalog(Settings().catalog_dir)
_assets = [Asset(*lake_asset_ref(code)) for code in sorted(_catalog.license_types)]


@dag(
    dag_id="issue_licenses",
    schedule=reduce(or_, _assets),
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["onehub", "issuance"],
    doc_md=__doc__,
)
def issue_licenses() -> None:
    @task(task_id="issue")
    def issue() -> dict[str, Any]:
        from onehub.runtime import run_issuance

        return run_issuance()

    issue()


issue_licenses()
