"""The SQL sources on MariaDB and PostgreSQL hold the same rows as on SQLite."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from catalog_schemas.catalog import shipped_catalog
from sample_systems import generate, mutate

CATALOG = shipped_catalog()


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    # DECIMAL comes back as Decimal from servers, as float from SQLite's REAL.
    return {k: float(v) if isinstance(v, Decimal) else v for k, v in values.items()}


def _same_rows_as_sqlite(tmp_path: Path, reader: Any, name: str, url: str) -> None:
    connection = CATALOG.source(name).connector.connection
    urls = {connection: url}
    on_server = generate(out_dir=tmp_path / "server", sources={name}, sql_urls=urls)
    on_sqlite = generate(out_dir=tmp_path / "sqlite", sources={name})
    server_entry, sqlite_entry = on_server.sources[name], on_sqlite.sources[name]
    assert server_entry.location == sa.make_url(url).render_as_string(hide_password=True)
    assert sqlite_entry.location == f"{connection}.db"
    server_entry.location = sqlite_entry.location
    assert on_server == on_sqlite
    server_rows = reader.read_rows(tmp_path / "server", on_server, name, urls)
    sqlite_rows = reader.read_rows(tmp_path / "sqlite", on_sqlite, name)
    assert [(r.ref, _plain(r.values)) for r in server_rows] == [
        (r.ref, _plain(r.values)) for r in sqlite_rows
    ]
    assert (
        any("年" in str(v) for r in server_rows for v in r.values.values())
        or name != "dca_marriage"
    )

    later = dt.datetime.fromisoformat(on_server.now) + dt.timedelta(days=1)
    mutated = mutate(
        out_dir=tmp_path / "server",
        manifest=on_server,
        seed=1,
        updates=3,
        inserts=4,
        now=later,
        sql_urls=urls,
    )
    rows = reader.read_rows(tmp_path / "server", mutated, name, urls)
    assert len(rows) == server_entry.rows + 4
    # Keyset order ends with exactly the rows this run changed.
    run = mutated.mutations[-1]
    assert {r.ref for r in rows[-7:]} == set(run.updated[name]) | set(run.inserted[name])


@pytest.mark.mariadb
def test_marriage_registry_on_mariadb(tmp_path: Path, reader: Any, mariadb_url: str) -> None:
    _same_rows_as_sqlite(tmp_path, reader, "dca_marriage", mariadb_url)


@pytest.mark.postgres
def test_insurance_registry_on_postgresql(tmp_path: Path, reader: Any, postgres_url: str) -> None:
    _same_rows_as_sqlite(tmp_path, reader, "hrss_insurance", postgres_url)


@pytest.mark.postgres
def test_title_registry_on_postgresql(tmp_path: Path, reader: Any, postgres_url: str) -> None:
    _same_rows_as_sqlite(tmp_path, reader, "dlr_title", postgres_url)
