"""schemathesis against the OpenAPI spec of the running API: no 5xx, and every response (status,
content type, headers, body) as the spec says, for generated valid and invalid requests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from test_api_world import add_consumer, issue_records, make_hub, standard_records

from exchange.api.app import ApiConfig, create_app

ST = Path(sys.executable).with_name("st")
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
        "negative_data_rejection",
        "ignored_auth",
        "unsupported_method",
    ]
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str]]:
    hub = make_hub(f"sqlite:///{tmp_path / 'hub.db'}")
    issue_records(hub, standard_records(hub.catalog))
    key = add_consumer(hub, "schemathesis", kind="counter", department="dps")
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(hub, ApiConfig(default_rate_limit="100000/second")),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", key
    server.should_exit = True
    thread.join(timeout=10)
    hub.engine.dispose()


@pytest.mark.skipif(not ST.exists(), reason="schemathesis is not installed in this venv")
def test_schemathesis_finds_no_5xx_and_no_response_off_the_spec(
    served: tuple[str, str], tmp_path: Path
) -> None:
    base, key = served
    command = [
        str(ST),
        "run",
        f"{base}/openapi.json",
        "--url",
        base,
        "-H",
        f"Authorization: Bearer {key}",
        "--checks",
        CHECKS,
        "--max-examples",
        "25",
        "--generation-deterministic",
        "--continue-on-failure",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "No issues found" in output or "passed" in output, output[-3000:]
    assert shutil.which(str(ST))
