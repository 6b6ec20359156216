"""Kill the server in the middle of a load run and start it again: every response that reached a
client has its audit row (rows are durable before the answer leaves), and the chain is whole."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from test_api_world import PERSON, add_consumer, issue_records, make_hub, standard_records

from exchange.audit import verify_chain
from exchange.model import AuditEntry

ONEHUB = Path(sys.executable).with_name("onehub")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [str(ONEHUB), "serve", "--workers", "2", "--port", str(port)],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/livez", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError(f"server did not start: {log.read_text()[-2000:]}")


def test_every_answered_request_survives_a_crash(postgres_url: str, tmp_path: Path) -> None:
    hub = make_hub(postgres_url)
    issue_records(hub, standard_records(hub.catalog))
    key = add_consumer(hub, "load-counter", kind="counter", department="dps")
    env = {
        **os.environ,
        "ONEHUB_DB_URL": postgres_url,
        "ONEHUB_DATA_DIR": str(tmp_path / "data"),
        "ONEHUB_HUB_KEY": hub.hub_key.hex(),
        "ONEHUB_KEK": hub.kek.hex(),
        "ONEHUB_DATA_KEYS": json.dumps(
            {"active": "k1", "keys": {"k1": bytes(range(32, 64)).hex()}}
        ),
        "ONEHUB_ISSUER_DID": hub.issuer_did,
        "ONEHUB_API_RATE_LIMIT": "100000/second",
    }
    port = _free_port()
    log = tmp_path / "server.log"
    server = _start(env, port, log)
    answered: list[tuple[str, int]] = []
    unanswered: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    body = {
        "id_number": PERSON,
        "purpose": "办理人才引进落户",
        "service_item": "talent_household_registration",
    }

    def client() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            while not stop.is_set():
                rid = uuid.uuid4().hex
                try:
                    response = http.post(
                        "/v1/lookups",
                        json=body,
                        headers={"Authorization": f"Bearer {key}", "X-Request-ID": rid},
                    )
                except httpx.HTTPError:
                    with lock:
                        unanswered.append(rid)
                    time.sleep(0.05)
                    continue
                assert response.headers["x-request-id"] == rid
                with lock:
                    answered.append((rid, response.status_code))

    threads = [threading.Thread(target=client) for _ in range(6)]
    try:
        for t in threads:
            t.start()
        time.sleep(1.5)
        before_crash = len(answered)
        os.killpg(server.pid, signal.SIGKILL)  # a crash, in the middle of requests
        server.wait(timeout=10)
        time.sleep(0.5)
        server = _start(env, port, log)
        time.sleep(1.5)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    assert before_crash > 20, log.read_text()[-2000:]
    assert len(answered) > before_crash + 20, "no answers after the restart"
    assert {status for _rid, status in answered} == {200}
    with hub.sessions() as session:
        audited = set(
            session.scalars(
                sa.select(AuditEntry.request_id).where(AuditEntry.request_id.is_not(None))
            )
        )
        assert verify_chain(session=session) is None
    missing = [rid for rid, _status in answered if rid not in audited]
    assert not missing, f"{len(missing)} answered requests have no audit row"
    # Requests cut off by the crash may or may not have a row; none has two.
    with hub.sessions() as session:
        duplicates = session.execute(
            sa.select(AuditEntry.request_id)
            .group_by(AuditEntry.request_id)
            .having(sa.func.count() > 1)
        ).all()
    assert not duplicates
    print(
        f"answered {len(answered)} ({before_crash} before the crash), "
        f"{len(unanswered)} cut off, {len(audited)} audit rows"
    )
    hub.engine.dispose()


@pytest.fixture(autouse=True)
def _need_onehub() -> None:
    if not ONEHUB.exists():
        pytest.skip("the onehub entry point is not installed in this venv")
