"""DAG policy: the folder parses with no import errors and no database or network access, and
every DAG has tags, an owner, retries ≥ 2, timeouts and catchup only where backfill is meant.

The folder is parsed in a fresh process (tests/dags/dag_probe.py) whose hub database, Airflow
metadata database and department connections all point at a local listener that counts every
connection made to it: the "databases" are unreachable in the sense that matters, and any
attempt to reach one at parse time is seen, whether from Python or from a C driver.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from catalog_schemas.catalog import load_catalog
from onehub.orchestrator import DAGS_FOLDER

PROBE = Path(__file__).with_name("dag_probe.py")
SHIPPED = load_catalog(None)


@dataclass
class Listener:
    """A TCP port that accepts connections, counts them and never answers."""

    port: int
    accepted: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    found = Listener(port=server.getsockname()[1])
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, addr = server.accept()
            except TimeoutError:
                continue
            found.accepted.append(str(addr))
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield found
    stop.set()
    thread.join(timeout=5)
    server.close()


def _parse(
    tmp: Path, listener: Listener, *, catalog_dir: Path | None = None, dags: Path = DAGS_FOLDER
) -> dict[str, Any]:
    """Parse ``dags`` in a fresh process; its findings plus ``connections`` made to ``listener``."""
    down = f"127.0.0.1:{listener.port}"
    before = len(listener.accepted)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ONEHUB_"))}
    env.update(
        {
            "AIRFLOW_HOME": str(tmp / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg://nobody@{down}/airflow",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": (
                f"postgresql+psycopg_async://nobody@{down}/airflow"
            ),
            "ONEHUB_DATA_DIR": str(tmp / "data"),  # no secrets there: parsing must not need them
            "ONEHUB_DB_URL": f"postgresql+psycopg://nobody@{down}/hub",
            "ONEHUB_LAKE_URI": f"s3://{down}/lake",
            "ONEHUB_CONN_DCA_REGISTRY": f"mysql+pymysql://nobody@{down}/dca",
            "AIRFLOW_CONN_DLR_REGISTRY": f"postgres://nobody@{down}/dlr",
            "ONEHUB_CONN_HRSS_REGISTRY": f"postgresql+psycopg://nobody@{down}/hrss",
            "AIRFLOW_CONN_AIC_DROP": json.dumps({"conn_type": "fs", "extra": {"path": "/nope"}}),
        }
    )
    if catalog_dir is not None:
        env["ONEHUB_CATALOG_DIR"] = str(catalog_dir)
    done = subprocess.run(
        [sys.executable, str(PROBE), str(dags)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["connections"] = len(listener.accepted) - before
    return result


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory, listener: Listener) -> dict[str, Any]:
    """The shipped catalog's DAGs, parsed with every database out of reach."""
    return _parse(tmp_path_factory.mktemp("parse"), listener)


def test_no_import_errors_and_one_ingest_dag_per_source_yaml(shipped: dict[str, Any]) -> None:
    assert shipped["import_errors"] == {}
    expected = {s.dag_id for s in SHIPPED.sources.values()} | {"issue_licenses", "maintenance"}
    assert set(shipped["dags"]) == expected
    sources_dir = Path(load_catalog.__code__.co_filename).parent / "catalog" / "sources"
    assert len(list(sources_dir.glob("*.yaml"))) == len(SHIPPED.sources)


def test_parsing_touches_no_database_and_no_network(shipped: dict[str, Any]) -> None:
    assert shipped["events"] == []
    assert shipped["connections"] == 0
    # Measured, not asserted (timings vary with the machine): see docs/orchestration.md.
    print(f"DAG folder parsed in {shipped['parse_seconds']:.2f} s", end=" ")
    print(f"(+{shipped['import_seconds']:.2f} s importing Airflow)")


def test_the_probe_sees_a_dag_file_that_connects_at_parse_time(
    tmp_path: Path, listener: Listener
) -> None:
    """The detector itself: a DAG file that opens the hub database while parsing is caught."""
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "bad.py").write_text(
        "import os\n"
        "import sqlalchemy as sa\n"
        "from airflow.sdk import dag\n"
        "try:\n"
        "    sa.create_engine(os.environ['ONEHUB_DB_URL'], connect_args={'connect_timeout': 1})"
        ".connect()\n"
        "except sa.exc.OperationalError:\n"
        "    pass\n"
        "@dag(dag_id='bad', schedule=None, tags=['x'])\n"
        "def bad():\n"
        "    pass\n"
        "bad()\n",
        encoding="utf-8",
    )
    parsed = _parse(tmp_path, listener, dags=dags)
    assert set(parsed["dags"]) == {"bad"}
    assert parsed["connections"] >= 1


def test_every_dag_has_tags_owner_retries_and_timeouts(shipped: dict[str, Any]) -> None:
    for dag_id, dag in shipped["dags"].items():
        assert dag["tags"] and "onehub" in dag["tags"], dag_id
        assert dag["owner"] == "onehub", dag_id
        assert dag["doc_md"].strip(), dag_id
        assert dag["max_active_runs"] == 1, dag_id
        assert dag["dagrun_timeout"], dag_id
        for task_id, task in dag["tasks"].items():
            where = f"{dag_id}.{task_id}"
            assert task["retries"] >= 2, where
            assert task["execution_timeout"], where
            assert task["on_failure_callback"] == ["onehub.dag_defaults.alert_on_failure"], where


def test_catchup_only_where_backfill_is_meant(shipped: dict[str, Any]) -> None:
    by_dag = {s.dag_id: s for s in SHIPPED.sources.values()}
    for dag_id, dag in shipped["dags"].items():
        meant = by_dag[dag_id].backfill if dag_id in by_dag else False
        assert dag["catchup"] is meant, dag_id


def test_ingest_dags_follow_their_yaml(shipped: dict[str, Any]) -> None:
    for source in SHIPPED.sources.values():
        dag = shipped["dags"][source.dag_id]
        batch = SHIPPED.department(source.department).batch
        assert {"ingest", f"department:{source.department}", f"batch:{batch}"} <= set(dag["tags"])
        assert source.description.strip().splitlines()[0] in dag["doc_md"]
        assert dag["schedule"] == source.schedule
        assert dag["params"] == ["window_start"]
        tasks = dag["tasks"]
        assert set(tasks) == {"ingest", "publish", "supervise"}
        assert tasks["ingest"]["retries"] == source.retries
        assert tasks["ingest"]["execution_timeout"] == source.timeout_minutes * 60
        assert tasks["publish"]["outlets"] == [f"onehub://lake/{source.license_type}"]
        assert tasks["supervise"]["trigger_rule"] == "all_done"
        assert tasks["supervise"]["upstream"] == ["ingest"]


def test_issuance_is_scheduled_on_every_lake_asset(shipped: dict[str, Any]) -> None:
    dag = shipped["dags"]["issue_licenses"]
    assert dag["asset_schedule"] == "AssetTriggeredTimetable"
    for code in SHIPPED.license_types:
        assert f"onehub_lake__{code}" in dag["schedule"]
    maintenance = shipped["dags"]["maintenance"]
    assert maintenance["schedule"] == "@daily"
    assert set(maintenance["tasks"]) == {
        "expire",
        "status_lists",
        "lake_upkeep",
        "supervise",
        "key_rotation",
    }


def test_a_source_yaml_sets_retries_timeouts_tags_and_backfill(
    tmp_path: Path, listener: Listener
) -> None:
    catalog_dir = tmp_path / "catalog"
    shutil.copytree(Path(load_catalog.__code__.co_filename).parent / "catalog", catalog_dir)
    path = catalog_dir / "sources" / "dca_marriage.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data.update(
        retries=4,
        retry_delay_minutes=2,
        timeout_minutes=15,
        tags=["pilot"],
        backfill=True,
        start_date="2026-06-01",
        schedule="@daily",
    )
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    parsed = _parse(tmp_path, listener, catalog_dir=catalog_dir)
    assert parsed["import_errors"] == {}
    dag = parsed["dags"]["ingest__dca__dca_marriage"]
    assert dag["catchup"] is True
    assert dag["start_date"].startswith("2026-06-01")
    assert "pilot" in dag["tags"]
    task = dag["tasks"]["ingest"]
    assert (task["retries"], task["retry_delay"], task["execution_timeout"]) == (4, 120, 900)
    # Five attempts of 15 min, four delays of 2 min, 10 min for publish and supervise.
    assert dag["dagrun_timeout"] == 5 * 900 + 4 * 120 + 600
    assert parsed["connections"] == 0 and parsed["events"] == []
