"""Run OneHub's DAGs through Airflow without a scheduler (``dag.test()``), for `make run` and tests.

This is the composition root, so it may import Airflow; the packages below it never do.
Airflow reads its configuration from the environment when first imported, hence
:func:`configure_airflow` runs before any ``import airflow``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from catalog_schemas.errors import FatalError
from onehub.settings import REPO_ROOT, Settings

logger = logging.getLogger(__name__)

DAGS_FOLDER = REPO_ROOT / "dags"


def airflow_environment(settings: Settings) -> dict[str, str]:
    """The environment that points Airflow at OneHub's DAGs and an embedded SQLite metadata DB."""
    home = settings.airflow_home
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": os.environ.get(
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{home / 'airflow.db'}"
        ),
        "ONEHUB_DATA_DIR": str(settings.resolved_data_dir),
        "ONEHUB_DEPARTMENTS_DIR": str(settings.departments_dir.resolve()),
        "ONEHUB_TASK_RETRY_DELAY_SECONDS": os.environ.get("ONEHUB_TASK_RETRY_DELAY_SECONDS", "1"),
    }


def configure_airflow(settings: Settings) -> None:
    """Export the Airflow environment (before Airflow is imported) and create its home."""
    env = airflow_environment(settings)
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    os.environ.update(env)


def migrate_metadata() -> None:
    """Create or upgrade Airflow's metadata database."""
    from airflow.utils.db import upgradedb

    upgradedb()


@dataclass(frozen=True)
class DagRunResult:
    dag_id: str
    state: str


def run_dag(dag_id: str) -> DagRunResult:
    """Run one DAG end to end with ``dag.test()``; FatalError unless it succeeded."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    if bag.import_errors:
        raise FatalError(f"DAG import errors: {bag.import_errors}", code="dag_import_error")
    dag: Any = bag.get_dag(dag_id)
    if dag is None:
        raise FatalError(f"no DAG {dag_id!r} in {DAGS_FOLDER}", code="dag_not_found")
    run = dag.test()
    state = str(getattr(run.state, "value", run.state))
    logger.info("DAG %s finished: %s", dag_id, state)
    if state != "success":
        raise FatalError(
            f"DAG {dag_id} ended {state}; see the task logs under AIRFLOW_HOME/logs",
            code="dag_failed",
        )
    return DagRunResult(dag_id=dag_id, state=state)


def run_all(settings: Settings, *, sources: list[str] | None = None) -> list[DagRunResult]:
    """Every ingest DAG (or the named sources'), then issuance, through Airflow."""
    configure_airflow(settings)
    migrate_metadata()
    from catalog_schemas.catalog import load_catalog

    catalog = load_catalog(settings.catalog_dir)
    chosen = (
        [catalog.source(name) for name in sources] if sources else list(catalog.sources.values())
    )
    results = [run_dag(source.dag_id) for source in chosen]
    results.append(run_dag("issue_licenses"))
    return results
