"""The whole path through Airflow: sample department systems → ingest DAGs → lake → issuance DAG
→ license store → HTTP lookup → offline verification; and a second run that changes nothing.

Airflow runs with ``dag.test()`` (no scheduler) on a SQLite metadata DB under the test's data
directory, configured before Airflow is first imported.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn

from exchange.api.app import create_app
from exchange.consumer import register
from exchange.hub import Hub
from exchange.lake import LakeTable
from exchange.model import IngestRun
from license_store.error import VerificationError
from license_store.key import KeyRing
from license_store.model import License
from license_store.verification import verify_credential
from onehub.database import create_schema
from onehub.settings import Settings, build_hub
from sample_systems import generate
from sample_systems.manifest import Manifest

pytestmark = pytest.mark.airflow


@dataclass
class Deployment:
    settings: Settings
    hub: Hub
    manifest: Manifest
    first_runs: list[str]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("onehub")
    env = {
        "ONEHUB_DATA_DIR": str(root / "data"),
        "ONEHUB_DEPARTMENTS_DIR": str(root / "departments"),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        settings = Settings()
        manifest = generate(
            out_dir=root / "departments", seed=7, people=400, companies=120, dirty_rate=0.03
        )
        hub = build_hub(settings, create_secrets=True)
        create_schema(hub.engine)

        from onehub.orchestrator import configure_airflow, migrate_metadata, run_dag

        configure_airflow(settings)
        migrate_metadata()
        runs = [run_dag(source.dag_id).state for source in hub.catalog.sources.values()]
        runs.append(run_dag("issue_licenses").state)
        yield Deployment(settings=settings, hub=hub, manifest=manifest, first_runs=runs)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _latest_runs(hub: Hub) -> dict[str, IngestRun]:
    with hub.sessions() as session:
        runs = session.scalars(sa.select(IngestRun).order_by(IngestRun.id)).all()
    return {run.source: run for run in runs}


def test_every_dag_run_succeeded(deployment: Deployment) -> None:
    assert deployment.first_runs == ["success"] * (len(deployment.hub.catalog.sources) + 1)


def test_rows_in_equal_loaded_plus_quarantined_per_source(deployment: Deployment) -> None:
    runs = _latest_runs(deployment.hub)
    assert set(runs) == set(deployment.hub.catalog.sources)
    for name, run in runs.items():
        expected = deployment.manifest.sources[name]
        assert run.status == "success"
        assert run.rows_in == run.rows_loaded + run.rows_quarantined, name
        assert run.rows_in == expected.rows, name
        assert run.rows_quarantined == expected.expected_quarantined, name
        assert run.rows_loaded == expected.expected_loaded, name


def test_quarantine_holds_exactly_the_dirty_rows(deployment: Deployment) -> None:
    from quality.quarantine import QuarantineRow

    with deployment.hub.sessions() as session:
        rows = session.execute(sa.select(QuarantineRow.source, QuarantineRow.row_ref)).all()
    found: dict[str, set[str]] = {}
    for source, ref in rows:
        found.setdefault(source, set()).add(ref)
    for name, expected in deployment.manifest.sources.items():
        assert found.get(name, set()) == set(expected.quarantined), name


def test_lake_holds_the_loaded_rows(deployment: Deployment) -> None:
    hub = deployment.hub
    for name, expected in deployment.manifest.sources.items():
        license_type = hub.catalog.license_type(hub.catalog.source(name).license_type)
        assert LakeTable(hub.lake_uri, license_type).count() == expected.expected_loaded, name


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def api(deployment: Deployment) -> Iterator[str]:
    """The exchange API served by uvicorn on a free localhost port."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(deployment.hub), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _consumer_key(hub: Hub, department: str) -> str:
    with hub.sessions.begin() as session:
        _consumer, key = register(
            session=session,
            catalog=hub.catalog,
            name=f"e2e-{department}-{time.monotonic_ns()}",
            kind="counter",
            department=department,
            now=hub.now(),
        )
    return key


def _lookup(api: str, key: str, id_number: str, **extra: Any) -> httpx.Response:
    body = {"id_number": id_number, "purpose": "end-to-end test", **extra}
    return httpx.post(
        f"{api}/v1/lookups", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


def test_lookup_over_http_returns_licenses_that_verify(deployment: Deployment, api: str) -> None:
    hub = deployment.hub
    key = _consumer_key(hub, "dps")
    ring = KeyRing(issuer_did=hub.issuer_did)
    person = deployment.manifest.demo_holders.people[0]
    response = _lookup(api, key, person.resident_id, service_item="talent_household_registration")
    assert response.status_code == 200, response.text
    body = response.json()
    returned = {lic["license_type"] for lic in body["licenses"]}
    assert "degree_certificate" in returned  # unconditional, readable by every department
    withheld = {lic["license_type"] for lic in body["withheld"]}
    assert "social_insurance_certificate" in withheld  # conditional: consent required
    assert person.resident_id not in json.dumps(body["withheld"])
    with hub.sessions() as session:
        keys = ring.key_set(session=session)
        for lic in body["licenses"]:
            verified = verify_credential(
                lic["credential"], keys=keys, now=hub.now(), session=session
            )
            assert verified.status == "valid"
            holders = lic["credential"]["credentialSubject"]["holders"]
            assert person.resident_id in {h["idNumber"] for h in holders}


def test_every_issued_license_verifies_with_the_published_keys(
    deployment: Deployment, api: str
) -> None:
    from exchange.access import china_today
    from license_store.key_set import KeySet
    from license_store.store import credential_of

    did_document = httpx.get(f"{api}/.well-known/did.json", timeout=10).json()
    keys = KeySet.from_did_document(did_document)
    hub = deployment.hub
    with hub.sessions() as session:
        licenses = session.scalars(sa.select(License)).all()
        assert len(licenses) == sum(s.expected_loaded for s in deployment.manifest.sources.values())
        expired = 0
        for lic in licenses:
            credential = credential_of(lic, hub.cipher)
            # Validity dates are China calendar days (UTC+8), not UTC ones.
            if lic.valid_until is not None and lic.valid_until < china_today(hub.now()):
                with pytest.raises(VerificationError) as err:
                    verify_credential(credential, keys=keys, now=hub.now())
                assert err.value.code == "expired"
                expired += 1
            else:
                verify_credential(credential, keys=keys, now=hub.now())
        assert expired < len(licenses)


def test_bad_id_number_is_a_problem_without_the_number(deployment: Deployment, api: str) -> None:
    key = _consumer_key(deployment.hub, "dps")
    wrong = deployment.manifest.demo_holders.people[0].resident_id[:-1] + "0"
    wrong = (
        wrong
        if wrong != deployment.manifest.demo_holders.people[0].resident_id
        else wrong[:-1] + "1"
    )
    response = _lookup(api, key, wrong)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "id_check_char"
    assert wrong not in response.text
    assert _lookup(api, "oh_nope_nope", wrong).status_code == 401


def test_no_plaintext_id_number_in_the_data_directory(deployment: Deployment) -> None:
    numbers = set(deployment.manifest.resident_ids) | set(deployment.manifest.id_variants)
    numbers |= {n[:6] + n[8:17] for n in deployment.manifest.resident_ids}  # 15-digit forms
    needles = [n.encode("utf-8") for n in numbers]
    data_dir = deployment.settings.resolved_data_dir
    scanned = 0
    for path in data_dir.rglob("*"):
        if not path.is_file():
            continue
        content = path.read_bytes()
        scanned += 1
        leaked = [n for n in needles if n in content]
        assert not leaked, f"{path} holds {len(leaked)} plaintext ID numbers"
    assert scanned > 10


def test_second_run_adds_no_lake_rows_and_no_licenses(deployment: Deployment) -> None:
    from onehub.orchestrator import run_dag

    hub = deployment.hub

    def snapshot() -> tuple[dict[str, int], int]:
        counts = {
            code: LakeTable(hub.lake_uri, lt).count()
            for code, lt in hub.catalog.license_types.items()
        }
        with hub.sessions() as session:
            licenses = session.scalar(sa.select(sa.func.count()).select_from(License)) or 0
        return counts, licenses

    before = snapshot()
    for source in hub.catalog.sources.values():
        assert run_dag(source.dag_id).state == "success"
    assert run_dag("issue_licenses").state == "success"
    assert snapshot() == before
    runs = _latest_runs(hub)
    assert all(run.rows_in == 0 for run in runs.values()), {n: r.rows_in for n, r in runs.items()}


def test_audit_chain_records_the_lookups(deployment: Deployment, api: str) -> None:
    from exchange.audit import verify_chain
    from exchange.model import AuditEntry

    with deployment.hub.sessions() as session:
        assert verify_chain(session=session) is None
        assert (session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) or 0) >= 1


def test_onehub_verify_accepts_what_the_lookup_returned(
    deployment: Deployment, api: str, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from onehub.cli import app

    key = _consumer_key(deployment.hub, "dhurd")
    person = deployment.manifest.demo_holders.people[0]
    response = _lookup(api, key, person.resident_id, service_item="housing_provident_withdrawal")
    assert response.status_code == 200
    assert response.json()["licenses"], "the demo holder has licenses a housing counter may see"
    lookup_file = tmp_path / "lookup.json"
    lookup_file.write_text(response.text, encoding="utf-8")
    runner = CliRunner()
    # Against the local hub (keys and live status from its database)...
    result = runner.invoke(app, ["verify", str(lookup_file)])
    assert result.exit_code == 0, result.output
    assert result.output.count("valid") >= len(response.json()["licenses"])
    # ...and offline against the published DID document alone.
    did_file = tmp_path / "did.json"
    did_file.write_text(httpx.get(f"{api}/.well-known/did.json", timeout=10).text, encoding="utf-8")
    result = runner.invoke(app, ["verify", str(lookup_file), "--keys", str(did_file)])
    assert result.exit_code == 0, result.output
