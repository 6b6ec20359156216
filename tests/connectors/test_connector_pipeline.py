"""Connectors through the real pipeline: the lake ends up equal to the department, deletions too.

One SQL, two file and one REST department run the whole ingest step (mapping, quality gate,
quarantine, Delta merge with the state in the commit) and the issuance step: a full load, then
inserts, updates and soft deletions, then a re-run that changes nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from connector_department import (
    T0,
    Department,
    FileDepartment,
    Rec,
    RestDepartment,
    SqlDepartment,
    cert_no,
    expected,
)

from catalog_schemas.catalog import shipped_catalog
from catalog_schemas.cipher import FieldCipher
from connectors import Connector
from exchange.hub import Hub
from exchange.issuance import issue_licenses
from exchange.lake import LakeTable
from exchange.pipeline import ingest_source
from license_store.model import License
from onehub.database import create_schema, signer_for

NOW = dt.datetime(2026, 11, 27, 3, 0, tzinfo=dt.UTC)


def make_hub(tmp_path: Path, dept: Department, batch_size: int = 4) -> Hub:
    """A hub on SQLite whose catalog's dlr_title source is ``dept``'s, soft deletes declared."""
    catalog = shipped_catalog()
    src = dept.source(batch_size=batch_size)
    catalog = dataclasses.replace(catalog, sources={**catalog.sources, "dlr_title": src})
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    create_schema(engine)
    return Hub(
        catalog=catalog,
        engine=engine,
        lake_uri=str(tmp_path / "lake"),
        hub_key=secrets.token_bytes(32),
        cipher=FieldCipher({"k1": secrets.token_bytes(32)}, "k1"),
        kek=secrets.token_bytes(32),
        issuer_did="did:web:onehub.test",
        resolve_connection=lambda conn_id: dept.location(),
        now=lambda: NOW,
    )


@pytest.fixture(params=["sql-sqlite", "file-csv-gbk", "file-xlsx", "rest-cursor"])
def dept(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Department]:
    kind = request.param
    department: Department
    if kind == "sql-sqlite":
        department = SqlDepartment(f"sqlite:///{tmp_path / 'dept.db'}", "sqlite")
    elif kind == "file-csv-gbk":
        department = FileDepartment(tmp_path / "drop", "csv", "gbk")
    elif kind == "file-xlsx":
        department = FileDepartment(tmp_path / "drop", "xlsx", "-")
    else:
        department = RestDepartment("cursor")
    yield department
    department.close()


def lake_rows(hub: Hub) -> dict[str, dict[str, Any]]:
    lake = LakeTable(hub.lake_uri, hub.catalog.license_type("real_estate_title"))
    return {r["record_key"].split(":", 2)[2]: r for r in lake.read().to_pylist()}


def live(rows: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {k: r["owner_name"] for k, r in rows.items() if not r["_deleted"]}


def statuses(hub: Hub) -> dict[str, int]:
    with hub.sessions() as session:
        return dict(
            session.execute(
                sa.select(License.status, sa.func.count()).group_by(License.status)
            ).all()
        )


def test_full_incremental_deletion_and_rerun_keep_the_lake_equal_to_the_source(
    tmp_path: Path, dept: Department, caplog: pytest.LogCaptureFixture
) -> None:
    hub = make_hub(tmp_path, dept)
    truth: dict[int, Rec] = {}
    first = [Rec(i, 1, T0 + dt.timedelta(minutes=i % 3)) for i in range(1, 13)]
    dept.write(first)
    truth.update({r.id: r for r in first})

    with caplog.at_level(logging.INFO, logger="exchange.pipeline"):
        report = ingest_source(hub, "dlr_title")

    assert (report.rows_in, report.rows_loaded, report.rows_quarantined) == (12, 12, 0)
    # What the Airflow task log shows per batch: rows so far and the rate.
    progress = [r.getMessage() for r in caplog.records if "rows/s" in r.getMessage()]
    assert len(progress) == report.batches and "12 rows in" in progress[-1]
    assert report.batches >= 2
    assert live(lake_rows(hub)) == expected(truth)
    signer = signer_for(hub)
    assert sum(issue_licenses(hub, signer).issued.values()) == 12
    keys_before = {k: r["owner_id__key"] for k, r in lake_rows(hub).items()}

    later = T0 + dt.timedelta(hours=1)
    change = [
        Rec(3, 2, later),
        Rec(4, 2, later),
        Rec(20, 1, later),
        Rec(5, 2, later, deleted=True),
        Rec(6, 2, later, deleted=True),
        Rec(77, 1, later, deleted=True),  # never loaded: nothing to delete
    ]
    dept.write(change)
    truth.update({r.id: r for r in change})

    report = ingest_source(hub, "dlr_title")

    assert (report.rows_in, report.rows_loaded, report.rows_deleted) == (6, 6, 3)
    rows = lake_rows(hub)
    assert live(rows) == expected(truth)
    assert rows[cert_no(5)]["_deleted"] and rows[cert_no(6)]["_deleted"]
    assert rows[cert_no(5)]["owner_id__key"] == keys_before[cert_no(5)]
    assert rows[cert_no(5)]["owner_name"] == "权利人5号v1"  # the record as it was, marked deleted
    assert cert_no(77) not in rows
    second = issue_licenses(hub, signer)
    assert sum(second.issued.values()) == 3  # two new versions and one new record
    assert sum(second.cancelled.values()) == 2
    assert statuses(hub) == {"valid": 11, "superseded": 2, "cancelled": 2}

    version = LakeTable(hub.lake_uri, hub.catalog.license_type("real_estate_title")).version()
    again = ingest_source(hub, "dlr_title")
    assert again.rows_in == 0
    assert LakeTable(hub.lake_uri, hub.catalog.license_type("real_estate_title")).version() == (
        version
    )
    assert sum(issue_licenses(hub, signer).issued.values()) == 0


def test_a_connector_satisfies_the_protocol(dept: Department) -> None:
    conn: Connector = dept.connector(dept.source(batch_size=4))
    assert conn.backlog(None).unit in ("rows", "files")
