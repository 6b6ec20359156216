"""One ingest DAG per department source in the catalog: ingest → publish, and supervise.

``ingest`` streams the source batch by batch (extract → validate → load per batch, bounded
memory, exactly-once per batch); ``publish`` checks the counts and emits the lake table's Asset,
which schedules issuance; ``supervise`` runs whatever ingest did and raises a yellow or red card
(a failed task, routed to mail or chat by the failure callback) when the source is late or its
batches are rejected. Schedule, retries, timeouts and tags come from the source's YAML.

The department's connection is the Airflow Connection of the source's ``connection`` id
(defined in the UI or as ``AIRFLOW_CONN_<ID>``), looked up when the task runs. Parsing reads
only the catalog YAML: no database or network access.

Backfill: trigger with the param ``window_start`` (an ISO date-time on the department's clock),
or run ``airflow backfill create``; the run re-reads the source from that point, and the lake's
exactly-once merge changes only the rows that differ.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset, Param, dag, get_current_context, task

from catalog_schemas.catalog import load_catalog
from catalog_schemas.model import Source
from onehub.dag_defaults import (
    WINDOW_PARAM,
    fatal_fails_task,
    ingest_dag_args,
    lake_asset_ref,
)
from onehub.settings import Settings


def _airflow_connection(conn_id: str) -> dict[str, Any] | None:
    """The fields of Airflow's Connection ``conn_id``, or None if Airflow has none."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = Connection.get(conn_id)
    except AirflowNotFoundException:
        return None
    return {
        "conn_type": conn.conn_type,
        "host": conn.host,
        "login": conn.login,
        "password": conn.password,
        "port": conn.port,
        "schema": conn.schema,
        "extra": conn.extra_dejson,
    }


def _window_start() -> str | None:
    """The backfill window's start: the run's param, or a backfill run's data interval start."""
    context = get_current_context()
    start = context["params"].get(WINDOW_PARAM)
    if start:
        return str(start)
    dag_run = context["dag_run"]
    if str(getattr(dag_run.run_type, "value", dag_run.run_type)) == "backfill":
        interval = context.get("data_interval_start")
        return interval.isoformat() if interval is not None else None
    return None


def build_ingest_dag(source: Source, batch: int) -> Any:
    @dag(
        **ingest_dag_args(source, batch),
        params={
            WINDOW_PARAM: Param(
                None,
                type=["null", "string"],
                description="Backfill: re-read the source from this ISO date-time "
                "(department clock). Empty: read incrementally from the watermark.",
            )
        },
    )
    def ingest_dag() -> None:
        @task(task_id="ingest")
        def ingest(source_name: str, conn_id: str) -> dict[str, Any]:
            from onehub.runtime import run_ingest

            with fatal_fails_task():
                return run_ingest(
                    source_name,
                    airflow_connection=_airflow_connection(conn_id),
                    window_start=_window_start(),
                )

        @task(task_id="publish", outlets=[Asset(*lake_asset_ref(source.license_type))])
        def publish(counts: dict[str, Any]) -> dict[str, Any]:
            from onehub.runtime import check_counts

            with fatal_fails_task():
                check_counts(counts)
            return counts

        # all_done: a failed ingest is exactly when a card may be due. The run's state still
        # comes from publish, which fails with ingest.
        @task(task_id="supervise", trigger_rule="all_done")
        def supervise(source_name: str) -> dict[str, Any]:
            from onehub.runtime import run_supervision

            with fatal_fails_task():
                return run_supervision([source_name])

        counts = ingest(source.name, source.connector.connection)
        publish(counts)
        counts >> supervise(source.name)

    return ingest_dag()


_catalog = load_catalog(Settings().catalog_dir)
for _source in _catalog.sources.values():
    globals()[_source.dag_id] = build_ingest_dag(
        _source, _catalog.department(_source.department).batch
    )
