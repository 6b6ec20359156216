"""Run OneHub's DAGs through Airflow: ``dag.test()`` for `make run` and tests, ``airflow
standalone`` for `make airflow`, and the environment of the production (Celery) profile.

This is the composition root, so it may import Airflow; the packages below it never do.
Airflow reads its configuration from the environment when first imported, hence
:func:`configure_airflow` runs before any ``import airflow``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalog_schemas.errors import FatalError, RetriableError
from onehub.settings import REPO_ROOT, Settings

logger = logging.getLogger(__name__)

DAGS_FOLDER = REPO_ROOT / "dags"
PASSWORD_FILE = "simple_auth_manager_passwords.json.generated"
STANDALONE_PID = "standalone.pid"
STANDALONE_LOG = "standalone.log"


def airflow_environment(settings: Settings, *, fast_retries: bool = True) -> dict[str, str]:
    """The environment that points Airflow at OneHub's DAGs and an embedded SQLite metadata DB.

    ``fast_retries`` sets a 1 s retry delay (unless ONEHUB_TASK_RETRY_DELAY_SECONDS is set), for
    dag.test() runs; a scheduler-driven deployment keeps the delays of the source YAML.
    """
    home = settings.airflow_home
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": os.environ.get(
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{home / 'airflow.db'}"
        ),
        "ONEHUB_DATA_DIR": str(settings.resolved_data_dir),
        "ONEHUB_DEPARTMENTS_DIR": str(settings.departments_dir.resolve()),
    }
    if fast_retries:
        env["ONEHUB_TASK_RETRY_DELAY_SECONDS"] = os.environ.get(
            "ONEHUB_TASK_RETRY_DELAY_SECONDS", "1"
        )
    return env


def production_environment(
    settings: Settings,
    *,
    airflow_db_url: str,
    broker_url: str,
    api_server_url: str,
    jwt_secret: str,
    queue: str = "default",
) -> dict[str, str]:
    """The environment of the production profile: PostgreSQL metadata DB, Celery over a broker.

    Every Airflow process (api-server, scheduler, dag-processor, celery worker) and the hub
    itself get the same environment. ``airflow_db_url`` is a ``postgresql+psycopg://`` URL;
    ``broker_url`` a ``redis://`` (or ``amqp://``) URL; ``api_server_url`` where workers reach
    the api-server (tasks call its /execution/ API); ``jwt_secret`` signs the task tokens the
    api-server checks, so it must be one shared secret. The hub's own database is
    ``settings.hub_db_url`` (``ONEHUB_DB_URL``, PostgreSQL in production).
    """
    env = airflow_environment(settings, fast_retries=False)
    env.update(
        {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_db_url,
            # Airflow derives its async URL as postgresql+asyncpg; psycopg 3 does async itself.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": _async_url(airflow_db_url),
            "AIRFLOW__CELERY__BROKER_URL": broker_url,
            # Celery's database result backend needs the db+ prefix.
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + airflow_db_url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": api_server_url.rstrip("/") + "/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret,
            "AIRFLOW__API__SECRET_KEY": jwt_secret,
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
            "ONEHUB_DB_URL": settings.hub_db_url,
        }
    )
    return env


def _async_url(url: str) -> str:
    scheme, rest = url.split("://", 1)
    if scheme in ("postgresql+psycopg", "postgresql"):
        return f"postgresql+psycopg_async://{rest}"
    return url


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


def run_dag(dag_id: str, *, conf: Mapping[str, Any] | None = None) -> DagRunResult:
    """Run one DAG end to end with ``dag.test()``; FatalError unless it succeeded."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    if bag.import_errors:
        raise FatalError(f"DAG import errors: {bag.import_errors}", code="dag_import_error")
    dag: Any = bag.get_dag(dag_id)
    if dag is None:
        raise FatalError(f"no DAG {dag_id!r} in {DAGS_FOLDER}", code="dag_not_found")
    run = dag.test(run_conf=dict(conf) if conf else None)
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


def run_backfill(settings: Settings, source: str, window_start: str) -> list[DagRunResult]:
    """Re-read one source from ``window_start`` (its ingest DAG with that param), then issue."""
    from catalog_schemas.catalog import load_catalog
    from onehub.dag_defaults import WINDOW_PARAM
    from onehub.runtime import parse_window_start

    # A bad value or an unknown source fails here, before Airflow starts.
    parse_window_start(window_start)
    dag_id = load_catalog(settings.catalog_dir).source(source).dag_id
    configure_airflow(settings)
    migrate_metadata()
    return [run_dag(dag_id, conf={WINDOW_PARAM: window_start}), run_dag("issue_licenses")]


def run_maintenance(settings: Settings) -> DagRunResult:
    """Run the maintenance DAG once, now."""
    configure_airflow(settings)
    migrate_metadata()
    return run_dag("maintenance")


def onehub_dag_ids(settings: Settings) -> list[str]:
    """Every DAG id OneHub defines for the catalog: one ingest DAG per source, and the rest."""
    from catalog_schemas.catalog import load_catalog

    catalog = load_catalog(settings.catalog_dir)
    return sorted([s.dag_id for s in catalog.sources.values()] + ["issue_licenses", "maintenance"])


# ---- make airflow: `airflow standalone` in the background -----------------------------------


@dataclass(frozen=True)
class Standalone:
    """A running `airflow standalone`: where it is and how to log in."""

    url: str
    username: str
    password: str
    pid: int
    log: Path
    dag_ids: list[str]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pid(settings: Settings) -> int | None:
    path = settings.airflow_home / STANDALONE_PID
    if not path.is_file():
        return None
    pid = int(path.read_text(encoding="utf-8").strip() or 0)
    return pid if pid and _alive(pid) else None


def _api(
    url: str, path: str, *, token: str | None = None, method: str = "GET", body: Any = None
) -> Any:
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.request(method, url + path, json=body, headers=headers, timeout=10)
    response.raise_for_status()
    return response.json()


def _wait(
    what: str, check: Any, *, timeout: float, proc: subprocess.Popen[bytes] | None, log: Path
) -> Any:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise FatalError(
                f"airflow standalone exited with {proc.returncode} while waiting for {what}; "
                f"see {log}",
                code="airflow_exited",
            )
        try:
            result = check()
        except (httpx.HTTPError, OSError, ValueError, KeyError):
            result = None
        if result:
            return result
        time.sleep(1)
    raise RetriableError(
        f"Airflow: {what} not ready after {timeout:.0f} s; see {log}", code="airflow_timeout"
    )


def start_standalone(settings: Settings, *, port: int = 8080, timeout: float = 180) -> Standalone:
    """Start `airflow standalone` (SQLite, LocalExecutor) on 127.0.0.1:``port`` in the background.

    Waits until the api-server, scheduler and dag-processor are healthy and every OneHub DAG is
    parsed, unpauses them, and returns the URL and the generated login.
    """
    home = settings.airflow_home
    home.mkdir(parents=True, exist_ok=True)
    log = home / STANDALONE_LOG
    url = f"http://127.0.0.1:{port}"
    bin_dir = Path(sys.executable).parent
    proc: subprocess.Popen[bytes] | None = None
    pid = _pid(settings)
    if pid is None:
        env = {
            **os.environ,
            **airflow_environment(settings, fast_retries=False),
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            # SQLite takes one writer at a time: a few tasks at once, and patience for the
            # api-server while the ingest tasks write (measured: 5 s timed out on 2 cores).
            "AIRFLOW__CORE__PARALLELISM": os.environ.get("AIRFLOW__CORE__PARALLELISM", "4"),
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": os.environ.get(
                "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT", "30"
            ),
        }
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [str(bin_dir / "airflow"), "standalone"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: `stop` ends all of it
                cwd=home,
            )
        pid = proc.pid
        (home / STANDALONE_PID).write_text(str(pid), encoding="utf-8")

    def healthy() -> bool:
        health = _api(url, "/api/v2/monitor/health")
        return all(
            health[part]["status"] == "healthy"
            for part in ("metadatabase", "scheduler", "dag_processor")
        )

    _wait("health", healthy, timeout=timeout, proc=proc, log=log)
    passwords = _wait(
        "login",
        lambda: json.loads((home / PASSWORD_FILE).read_text(encoding="utf-8")),
        timeout=30,
        proc=proc,
        log=log,
    )
    username, password = next(iter(passwords.items()))
    token = _api(
        url, "/auth/token", method="POST", body={"username": username, "password": password}
    )["access_token"]
    wanted = onehub_dag_ids(settings)

    def parsed() -> list[str] | None:
        found = {d["dag_id"] for d in _api(url, "/api/v2/dags?limit=1000", token=token)["dags"]}
        return wanted if set(wanted) <= found else None

    _wait("the OneHub DAGs", parsed, timeout=timeout, proc=proc, log=log)
    for dag_id in wanted:
        _api(url, f"/api/v2/dags/{dag_id}", token=token, method="PATCH", body={"is_paused": False})
    return Standalone(
        url=url, username=username, password=password, pid=pid, log=log, dag_ids=wanted
    )


def stop_standalone(settings: Settings, *, grace: float = 20) -> int | None:
    """Stop the `airflow standalone` started by :func:`start_standalone`; its pid, or None."""
    pid = _pid(settings)
    (settings.airflow_home / STANDALONE_PID).unlink(missing_ok=True)
    if pid is None:
        return None
    stop_process_groups([pid], grace=grace)
    return pid


def stop_process_groups(pids: Iterable[int], *, grace: float = 20) -> None:
    """SIGTERM the process groups the ``pids`` lead; SIGKILL whatever is left after ``grace`` s."""
    alive = []
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
            alive.append(pid)
    deadline = time.monotonic() + grace
    while alive and time.monotonic() < deadline:
        for pid in list(alive):
            with contextlib.suppress(ChildProcessError):  # reap our own child: no zombie left
                os.waitpid(pid, os.WNOHANG)
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                alive.remove(pid)
        time.sleep(0.2)
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
