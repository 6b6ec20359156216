"""The embedded hub database's SQLite set-up (onehub.settings.make_engine)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlalchemy as sa

from license_store.model import metadata
from onehub.settings import SQLITE_CACHE_KIB, SQLITE_PAGE_SIZE, make_engine


def _pragmas(engine: sa.Engine) -> dict[str, object]:
    with engine.connect() as connection:
        return {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("page_size", "journal_mode", "foreign_keys", "cache_size")
        }


def test_a_new_hub_database_gets_large_pages_wal_and_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    metadata.create_all(engine)
    assert _pragmas(engine) == {
        "page_size": SQLITE_PAGE_SIZE,
        "journal_mode": "wal",
        "foreign_keys": 1,
        "cache_size": -SQLITE_CACHE_KIB,
    }
    engine.dispose()
    # The file itself has the page size (another program opening it sees the same).
    with sqlite3.connect(tmp_path / "hub.db") as raw:
        assert raw.execute("PRAGMA page_size").fetchone() == (SQLITE_PAGE_SIZE,)


def test_an_existing_database_keeps_its_page_size_and_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA page_size=4096")
        raw.execute("CREATE TABLE kept (value TEXT)")
        raw.execute("INSERT INTO kept VALUES ('before')")
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO kept VALUES ('after')")
    pragmas = _pragmas(engine)
    assert pragmas["page_size"] == 4096
    assert pragmas["journal_mode"] == "wal"
    with engine.connect() as connection:
        values = connection.exec_driver_sql("SELECT value FROM kept ORDER BY rowid").scalars()
        assert list(values) == ["before", "after"]
    engine.dispose()
