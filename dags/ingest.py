"""One ingest DAG per department source in the catalog: ingest → publish the lake table's Asset.

The ingest task streams the source batch by batch (extract → validate → load per batch, bounded
memory, exactly-once per batch); publish checks the counts and emits the Asset that schedules
issuance. Parsing reads only the catalog YAML: no database or network access.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset, dag, task

from catalog_schemas.catalog import load_catalog
from catalog_schemas.model import Source
from onehub.dag_defaults import START, default_args, lake_asset_ref
from onehub.settings import Settings


def build_ingest_dag(source: Source, batch: int) -> Any:
    @dag(
        dag_id=source.dag_id,
        schedule=source.schedule,
        start_date=START,
        catchup=False,
        max_active_runs=1,
        default_args=default_args(),
        tags=["onehub", "ingest", f"department:{source.department}", f"batch:{batch}"],
        doc_md=source.description,
    )
    def ingest_dag() -> None:
        @task(task_id="ingest")
        def ingest(source_name: str) -> dict[str, Any]:
            from onehub.runtime import run_ingest

            return run_ingest(source_name)

        @task(task_id="publish", outlets=[Asset(*lake_asset_ref(source.license_type))])
        def publish(counts: dict[str, Any]) -> dict[str, Any]:
            from onehub.runtime import check_counts

            check_counts(counts)
            return counts

        publish(ingest(source.name))

    return ingest_dag()


_catalog = load_catalog(Settings().catalog_dir)
for _source in _catalog.sources.values():
    globals()[_source.dag_id] = build_ingest_dag(
        _source, _catalog.department(_source.department).batch
    )
