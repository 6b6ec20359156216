"""Pipeline steps without Airflow, over real department databases and both hub databases.

Department systems: SQLite, MariaDB and PostgreSQL. Hub database (license store, quarantine,
runs): SQLite and PostgreSQL. Each case ingests, issues, re-runs (nothing changes), then applies
source updates and inserts and checks that exactly those flow through.
"""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path

import pytest
import sqlalchemy as sa

from catalog_schemas.catalog import shipped_catalog
from catalog_schemas.cipher import FieldCipher
from exchange.hub import Hub
from exchange.issuance import issue_licenses
from exchange.lake import LakeTable
from exchange.pipeline import QualityThresholdError, ingest_source
from license_store.model import License
from onehub.database import create_schema, signer_for
from quality.quarantine import QuarantineRow
from sample_systems import generate, mutate

SQL_SOURCES = ["dca_marriage", "hrss_insurance", "dlr_title"]
NOW = dt.datetime(2026, 11, 27, 3, 0, tzinfo=dt.UTC)


def _hub(tmp_path: Path, hub_db_url: str, connections: dict[str, str]) -> Hub:
    engine = sa.create_engine(hub_db_url)
    create_schema(engine)
    return Hub(
        catalog=shipped_catalog(),
        engine=engine,
        lake_uri=str(tmp_path / "lake"),
        hub_key=secrets.token_bytes(32),
        cipher=FieldCipher({"k1": secrets.token_bytes(32)}, "k1"),
        kek=secrets.token_bytes(32),
        issuer_did="did:web:onehub.test",
        resolve_connection=lambda conn_id: connections[conn_id],
        now=lambda: NOW,
    )


@pytest.fixture(params=["sqlite", "mariadb", "postgres"])
def department_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'department.db'}"
    return str(request.getfixturevalue(f"{request.param}_url"))


def _licenses(hub: Hub) -> int:
    with hub.sessions() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(License)) or 0


def test_ingest_issue_rerun_and_increment(
    tmp_path: Path, department_url: str, hub_db_url: str
) -> None:
    catalog = shipped_catalog()
    connections = {catalog.source(s).connector.connection: department_url for s in SQL_SOURCES}
    out = tmp_path / "departments"
    manifest = generate(
        out_dir=out,
        seed=11,
        people=480,
        companies=30,
        sql_urls=connections,
        sources=SQL_SOURCES,
        now=dt.datetime(2026, 11, 1, 9, 0),
    )
    hub = _hub(tmp_path, hub_db_url, connections)
    signer = signer_for(hub)

    for name in SQL_SOURCES:
        report = ingest_source(hub, name)
        expected = manifest.sources[name]
        assert report.rows_in == report.rows_loaded + report.rows_quarantined == expected.rows
        assert report.rows_quarantined == expected.expected_quarantined
        lake = LakeTable(hub.lake_uri, catalog.license_type(catalog.source(name).license_type))
        assert lake.count() == expected.expected_loaded
    with hub.sessions() as session:
        refs = {
            (s, r)
            for s, r in session.execute(sa.select(QuarantineRow.source, QuarantineRow.row_ref))
        }
    assert refs == {(n, r) for n in SQL_SOURCES for r in manifest.sources[n].quarantined}

    first = issue_licenses(hub, signer)
    loaded = sum(manifest.sources[n].expected_loaded for n in SQL_SOURCES)
    assert sum(first.issued.values()) == loaded == _licenses(hub)

    # A second run reads nothing new and issues nothing.
    for name in SQL_SOURCES:
        assert ingest_source(hub, name).rows_in == 0
    assert sum(issue_licenses(hub, signer).issued.values()) == 0
    assert _licenses(hub) == loaded

    # Updates give new versions (old ones superseded), inserts new licenses.
    mutated = mutate(
        out_dir=out,
        manifest=manifest,
        seed=12,
        updates=5,
        inserts=7,
        now=dt.datetime(2026, 11, 2, 9, 0),
        sql_urls=connections,
        sources=SQL_SOURCES,
    )
    change = mutated.mutations[-1]
    for name in SQL_SOURCES:
        report = ingest_source(hub, name)
        assert report.rows_in == len(change.updated[name]) + len(change.inserted[name])
        assert report.rows_quarantined == 0
    second = issue_licenses(hub, signer)
    inserted = sum(len(change.inserted[n]) for n in SQL_SOURCES)
    updated = sum(len(change.updated[n]) for n in SQL_SOURCES)
    assert sum(second.issued.values()) == inserted + updated
    with hub.sessions() as session:
        statuses = dict(
            session.execute(
                sa.select(License.status, sa.func.count()).group_by(License.status)
            ).all()
        )
    assert statuses == {"valid": loaded + inserted, "superseded": updated}


def test_batch_above_threshold_publishes_nothing(tmp_path: Path) -> None:
    catalog = shipped_catalog()
    url = f"sqlite:///{tmp_path / 'department.db'}"
    connections = {"dca_registry": url}
    generate(
        out_dir=tmp_path / "departments",
        seed=3,
        people=200,
        companies=10,
        dirty_rate=0.2,
        sql_urls=connections,
        sources=["dca_marriage"],
    )
    hub = _hub(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}", connections)
    with pytest.raises(QualityThresholdError) as err:
        ingest_source(hub, "dca_marriage")
    assert "threshold" in str(err.value) and "×" in str(err.value)
    lake = LakeTable(hub.lake_uri, catalog.license_type("marriage_certificate"))
    assert lake.count() == 0
    assert lake.committed_state("dca_marriage") is None  # the watermark did not move
    with hub.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(QuarantineRow)) == 0
