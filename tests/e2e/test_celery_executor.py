"""The production profile for real: Airflow's api-server, scheduler, dag-processor and one Celery
worker on this machine's PostgreSQL (Airflow's metadata, the hub, the department) and Redis (the
broker). The test triggers an ingest DAG through the REST API and waits for the issuance DAG,
which only the lake table's Asset can start. No dag.test() anywhere.

The department's database reaches the task as an Airflow Connection (``AIRFLOW_CONN_<ID>``).
Everything the test creates — processes, databases, broker keys — is removed afterwards.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import sqlalchemy as sa
import yaml

from catalog_schemas.catalog import load_catalog
from exchange.lake import LakeTable
from license_store.model import License
from onehub.database import create_schema
from onehub.orchestrator import production_environment, stop_process_groups
from onehub.settings import Settings, build_hub
from sample_systems import generate

pytestmark = [pytest.mark.airflow, pytest.mark.postgres]

SOURCE = "dca_marriage"
PG_ADMIN_URL = os.environ.get(
    "ONEHUB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS = os.environ.get("ONEHUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
BIN = Path(sys.executable).parent


def _require(host: str, port: int, name: str) -> None:
    """Skip when a server is down, except under CI=true (as tests/conftest.py does)."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return
    except OSError:
        pass
    message = f"{name} is not reachable on {host}:{port}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}, and CI=true requires it (.ci/run should have started it)")
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Celery:
    api: str
    env: dict[str, str]
    settings: Settings
    logs: Path
    department_url: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(method, self.api + path, json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def wait(self, what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    pytest.fail(f"{name} exited ({proc.returncode}): {self.tail(name)}")
            try:
                found = check()
            except (httpx.HTTPError, KeyError):
                found = None
            if found:
                return found
            time.sleep(0.5)
        tails = "\n".join(f"--- {n}\n{self.tail(n)}" for n in self.processes)
        pytest.fail(f"timed out waiting for {what}\n{tails}")

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.logs / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _databases(names: list[str]) -> tuple[sa.Engine, dict[str, str]]:
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    urls = {}
    with admin.connect() as conn:
        for name in names:
            db = f"onehub_celery_{name}_{uuid.uuid4().hex[:8]}"
            conn.execute(sa.text(f'CREATE DATABASE "{db}"'))
            urls[name] = sa.make_url(PG_ADMIN_URL).set(database=db).render_as_string(False)
    return admin, urls


def _drop(admin: sa.Engine, urls: dict[str, str]) -> None:
    with admin.connect() as conn:
        for url in urls.values():
            db = sa.make_url(url).database
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
    admin.dispose()


def _forget_queue(queue: str) -> None:
    """Delete the broker keys of the test's own queue (other users of Redis are left alone)."""
    import redis

    client = redis.Redis.from_url(REDIS)
    try:
        keys = [k for k in client.scan_iter(match=f"*{queue}*")]
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def _one_source_catalog(root: Path) -> Path:
    """The shipped catalog with one source, triggered only by hand (schedule: null)."""
    shipped = Path(load_catalog.__code__.co_filename).parent / "catalog"
    catalog = root / "catalog"
    shutil.copytree(shipped, catalog)
    for path in (catalog / "sources").glob("*.yaml"):
        if path.stem != SOURCE:
            path.unlink()
    path = catalog / "sources" / f"{SOURCE}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["schedule"] = None
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return catalog


@pytest.fixture(scope="module")
def celery(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Celery]:
    _require("127.0.0.1", 5432, "PostgreSQL")
    broker = urlsplit(REDIS)
    _require(broker.hostname or "127.0.0.1", broker.port or 6379, "Redis")
    root = tmp_path_factory.mktemp("celery")
    logs = root / "logs"
    logs.mkdir()
    admin, urls = _databases(["airflow", "hub", "department"])
    queue = f"onehub_test_{uuid.uuid4().hex[:8]}"
    celery: Celery | None = None
    try:
        settings = Settings(
            data_dir=root / "data",
            departments_dir=root / "departments",
            db_url=urls["hub"],
            catalog_dir=_one_source_catalog(root),
        )
        port = _free_port()
        api = f"http://127.0.0.1:{port}"
        department = sa.make_url(urls["department"]).set(drivername="postgres")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ONEHUB_"))}
        env.update(
            production_environment(
                settings,
                airflow_db_url=urls["airflow"],
                broker_url=REDIS,
                api_server_url=api,
                jwt_secret=secrets.token_urlsafe(32),
                queue=queue,
            )
        )
        env.update(
            {
                "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                "ONEHUB_CATALOG_DIR": str(settings.catalog_dir),
                "ONEHUB_TASK_RETRY_DELAY_SECONDS": "1",
                # The department as Airflow knows it: an Airflow Connection URI.
                "AIRFLOW_CONN_DCA_REGISTRY": department.render_as_string(False),
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": "4",
                "AIRFLOW_HOME": str(root / "airflow"),
            }
        )
        celery = Celery(
            api=api, env=env, settings=settings, logs=logs, department_url=urls["department"]
        )
        # The worker starts with the migration; the api-server, the scheduler and the
        # dag-processor refuse an unmigrated database, so they follow it.
        early = {
            "migrate": ["db", "migrate"],
            "worker": ["celery", "worker", "--queues", queue, "--concurrency", "4"],
        }
        late = {
            "dag-processor": ["dag-processor"],
            "api-server": ["api-server", "--host", "127.0.0.1", "--port", str(port)],
            "scheduler": ["scheduler"],
        }

        def start(commands: dict[str, list[str]]) -> None:
            for name, args in commands.items():
                with (logs / f"{name}.log").open("wb") as out:
                    celery.processes[name] = subprocess.Popen(
                        [str(BIN / "airflow"), *args],
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        start_new_session=True,
                        cwd=root,
                    )

        start(early)
        generate(
            out_dir=settings.departments_dir,
            seed=5,
            people=120,
            companies=40,
            dirty_rate=0.0,
            sources=[SOURCE],
            sql_urls={"dca_registry": urls["department"]},
        )
        # `onehub sample` and `onehub init` while Airflow migrates its database.
        hub = build_hub(settings, create_secrets=True)
        create_schema(hub.engine)
        hub.engine.dispose()

        migrate = celery.processes.pop("migrate")
        assert migrate.wait(timeout=120) == 0, celery.tail("migrate", 60)
        start(late)

        def healthy() -> bool:
            health = celery.call("GET", "/api/v2/monitor/health")
            parts = ("metadatabase", "scheduler", "dag_processor")
            return all(health[p]["status"] == "healthy" for p in parts)

        celery.wait("the api-server, scheduler and dag-processor", healthy)
        celery.wait("the Celery worker", lambda: "ready." in celery.tail("worker", 200))
        wanted = {f"ingest__dca__{SOURCE}", "issue_licenses", "maintenance"}
        celery.wait(
            "the DAGs",
            lambda: wanted <= {d["dag_id"] for d in celery.call("GET", "/api/v2/dags")["dags"]},
        )
        yield celery
    finally:
        if celery is not None:
            stop_process_groups([p.pid for p in celery.processes.values()], grace=5)
            for proc in celery.processes.values():
                proc.wait(timeout=10)
        _drop(admin, urls)
        _forget_queue(queue)


def _runs(celery: Celery, dag_id: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = celery.call("GET", f"/api/v2/dags/{dag_id}/dagRuns")["dag_runs"]
    return runs


def test_an_ingest_triggered_by_rest_runs_issuance_through_the_asset(celery: Celery) -> None:
    ingest, issuance = f"ingest__dca__{SOURCE}", "issue_licenses"
    for dag_id in (ingest, issuance):
        celery.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
    assert _runs(celery, issuance) == []

    run = celery.call("POST", f"/api/v2/dags/{ingest}/dagRuns", {"logical_date": None})
    triggered = time.monotonic()

    done = celery.wait("the ingest run", lambda: _finished(celery, ingest, run["dag_run_id"]), 90)
    assert done["state"] == "success", celery.tail("worker", 80)
    tasks = celery.call("GET", f"/api/v2/dags/{ingest}/dagRuns/{run['dag_run_id']}/taskInstances")
    by_task = {t["task_id"]: t for t in tasks["task_instances"]}
    assert {t: by_task[t]["state"] for t in by_task} == {
        "ingest": "success",
        "publish": "success",
        "supervise": "success",
    }
    # Executed by the Celery worker: the task went through the test's own broker queue.
    assert {t["queue"] for t in by_task.values()} == {
        celery.env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"]
    }

    issued = celery.wait(
        "the asset-triggered issuance run",
        lambda: [r for r in _runs(celery, issuance) if r["state"] in ("success", "failed")],
        90,
    )
    print(f"trigger → issuance {issued[0]['state']} in {time.monotonic() - triggered:.1f} s")
    assert [(r["run_type"], r["state"]) for r in issued] == [("asset_triggered", "success")]

    # What the runs did, read from the hub's PostgreSQL database and its lake.
    loaded, licenses = _lake_and_licenses(celery)
    assert loaded > 0 and licenses == loaded


def _lake_and_licenses(celery: Celery) -> tuple[int, int]:
    hub = build_hub(celery.settings)
    try:
        license_type = hub.catalog.license_type(hub.catalog.source(SOURCE).license_type)
        loaded = LakeTable(hub.lake_uri, license_type).count()
        with hub.sessions() as session:
            licenses = session.scalar(sa.select(sa.func.count()).select_from(License)) or 0
        return loaded, licenses
    finally:
        hub.engine.dispose()


def _finished(celery: Celery, dag_id: str, run_id: str) -> dict[str, Any] | None:
    found: dict[str, Any] = celery.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
    return found if found["state"] in ("success", "failed") else None


def test_a_backfill_triggered_with_a_window_changes_only_what_differs(celery: Celery) -> None:
    """An operator's backfill: "Trigger DAG" with ``window_start``, after an in-place fix."""
    ingest = f"ingest__dca__{SOURCE}"
    before_lake, before_licenses = _lake_and_licenses(celery)
    assert before_licenses > 0, "runs after the first test"
    department = sa.create_engine(celery.department_url)
    try:
        with department.begin() as conn:
            start, reg_id = conn.execute(
                sa.text(
                    "SELECT updated_at, reg_id FROM marriage_registration "
                    "ORDER BY updated_at DESC, reg_id LIMIT 1 OFFSET 5"
                )
            ).one()
            conn.execute(  # corrected in place: the department did not bump updated_at
                sa.text(
                    "UPDATE marriage_registration SET office_name = office_name || '（更正）' "
                    "WHERE reg_id = :id"
                ),
                {"id": reg_id},
            )
            in_window = conn.execute(
                sa.text("SELECT count(*) FROM marriage_registration WHERE updated_at >= :t"),
                {"t": start},
            ).scalar_one()
    finally:
        department.dispose()
    issued_before = len(_runs(celery, "issue_licenses"))
    run = celery.call(
        "POST",
        f"/api/v2/dags/{ingest}/dagRuns",
        {"logical_date": None, "conf": {"window_start": start.isoformat()}},
    )
    done = celery.wait("the backfill run", lambda: _finished(celery, ingest, run["dag_run_id"]), 90)
    assert done["state"] == "success", celery.tail("worker", 80)
    xcom = celery.call(
        "GET",
        f"/api/v2/dags/{ingest}/dagRuns/{run['dag_run_id']}/taskInstances/ingest/xcomEntries/"
        "return_value",
    )
    counts = xcom["value"]
    assert (counts["rows_in"], counts["backfill_from"]) == (in_window, start.isoformat())
    # Maintenance's daily run starts now, beside the issuance this run queued; the last test
    # looks at it.
    celery.call("PATCH", "/api/v2/dags/maintenance", {"is_paused": False})
    celery.wait(
        "the second issuance",
        lambda: (
            len([r for r in _runs(celery, "issue_licenses") if r["state"] in ("success", "failed")])
            > issued_before
        ),
        90,
    )
    assert {r["state"] for r in _runs(celery, "issue_licenses")} == {"success"}
    # One record differed: one more license version, and no new lake row.
    assert _lake_and_licenses(celery) == (before_lake, before_licenses + 1)


def test_the_maintenance_dag_runs_on_the_worker(celery: Celery) -> None:
    celery.call("PATCH", "/api/v2/dags/maintenance", {"is_paused": False})
    runs = celery.wait(
        "the daily maintenance run",
        lambda: [r for r in _runs(celery, "maintenance") if r["state"] in ("success", "failed")],
        90,
    )
    run = runs[0]
    assert run["run_type"] == "scheduled"
    tasks = celery.call(
        "GET", f"/api/v2/dags/maintenance/dagRuns/{run['dag_run_id']}/taskInstances"
    )
    states = {t["task_id"]: t["state"] for t in tasks["task_instances"]}
    assert run["state"] == "success", states
    for task in ("lake_upkeep", "supervise", "key_rotation"):
        assert states[task] == "success", states
    # expire and status_lists come from exchange.maintenance: done if installed, else skipped.
    assert states["expire"] in ("success", "skipped"), states
    assert states["status_lists"] in ("success", "skipped"), states
