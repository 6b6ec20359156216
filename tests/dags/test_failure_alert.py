"""The failure callback every OneHub task carries, and where a task finds its department."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from catalog_schemas.errors import FatalError
from onehub.dag_defaults import alert_on_failure, default_args
from onehub.runtime import location_for
from onehub.settings import Settings


class _Ti:
    dag_id = "ingest__dca__dca_marriage"
    task_id = "supervise"
    run_id = "scheduled__2026-03-02T08:00:00+00:00"


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A chat webhook on localhost that records what it is sent."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


def test_a_failure_is_posted_to_the_webhook_without_id_numbers(
    webhook: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, received = webhook
    monkeypatch.setenv("ONEHUB_ALERT_WEBHOOK_URL", url)
    error = FatalError("row of 440106199001011234 rejected", code="x")
    alert_on_failure({"ti": _Ti(), "exception": error})
    assert len(received) == 1
    text = received[0]["text"]
    assert text.startswith("OneHub: ingest__dca__dca_marriage.supervise failed (run scheduled__")
    assert "440106************" in text and "199001011234" not in text


def test_an_unreachable_webhook_does_not_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEHUB_ALERT_WEBHOOK_URL", "http://127.0.0.1:9/hook")
    alert_on_failure({"ti": _Ti(), "exception": RuntimeError("boom")})


def test_mail_goes_through_airflow_when_an_address_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "email" not in default_args()
    monkeypatch.setenv("ONEHUB_ALERT_EMAIL", "ops@example.gov.cn, duty@example.gov.cn")
    args = default_args()
    assert args["email"] == ["ops@example.gov.cn", "duty@example.gov.cn"]
    assert args["email_on_failure"] is True and args["on_failure_callback"] is alert_on_failure


def test_a_fatal_error_fails_the_task_without_retries(tmp_path: Path) -> None:
    # In a fresh process: importing Airflow here would fix its configuration for the session.
    script = (
        "from airflow.sdk.exceptions import AirflowFailException\n"
        "from catalog_schemas.errors import FatalError\n"
        "from onehub.dag_defaults import fatal_fails_task\n"
        "try:\n"
        "    with fatal_fails_task():\n"
        "        raise FatalError('too many bad rows', code='quality_threshold_exceeded')\n"
        "except AirflowFailException as exc:\n"
        "    print('fail:', exc)\n"
        "try:\n"
        "    with fatal_fails_task():\n"
        "        raise KeyError('x')\n"
        "except KeyError:\n"
        "    print('left to retries')\n"
    )
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-2:] == ["fail: [quality_threshold_exceeded] too many bad rows", "left to retries"]


def test_a_department_connection_comes_from_airflow_unless_onehub_overrides_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("ONEHUB_CONN_DCA_REGISTRY", raising=False)
    monkeypatch.setenv("ONEHUB_DEPARTMENTS_DIR", str(tmp_path))
    settings = Settings()
    airflow = {
        "conn_type": "postgres",
        "host": "db.dca.gd.gov.cn",
        "login": "reader",
        "password": "s3cret",
        "port": 5432,
        "schema": "registry",
        "extra": {},
    }
    location = location_for(settings, "dca_registry", airflow)
    assert location.startswith("postgresql+psycopg://reader:s3cret@db.dca.gd.gov.cn:5432/")
    folder = location_for(settings, "aic_drop", {"conn_type": "fs", "extra": {"path": "/drop"}})
    assert folder == "/drop"
    # No Airflow connection: the sample department systems.
    assert location_for(settings, "dca_registry", None) == f"sqlite:///{tmp_path}/dca_registry.db"
    monkeypatch.setenv("ONEHUB_CONN_DCA_REGISTRY", "sqlite:////override.db")
    assert location_for(settings, "dca_registry", airflow) == "sqlite:////override.db"
