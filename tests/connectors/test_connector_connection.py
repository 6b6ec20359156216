"""Airflow connections (URI or JSON) as connector locations, through the settings' resolver."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from connector_department import T0, Mirror, Rec, SqlDepartment, expected, run

from connectors.connection import ConnectionFormatError, location_from_airflow
from onehub.settings import Settings


@pytest.mark.parametrize(
    ("airflow", "location"),
    [
        ("sqlite://%2Fdata%2Fdca.db", "sqlite:////data/dca.db"),
        ("sqlite:////data/dca.db", "sqlite:////data/dca.db"),
        ("mysql://root@db.dca:3306/registry", "mysql+pymysql://root@db.dca:3306/registry"),
        (
            "mariadb://u:p%40ss@db:3306/r?charset=utf8mb4&__extra__=%7B%22ssl%22%3A1%7D",
            "mysql+pymysql://u:p%40ss@db:3306/r?charset=utf8mb4",
        ),
        ("postgres://hub@pg:5432/dlr", "postgresql+psycopg://hub@pg:5432/dlr"),
        ("postgresql+psycopg://hub@pg/dlr", "postgresql+psycopg://hub@pg/dlr"),
        ("fs://?__extra__=%7B%22path%22%3A%22%2Fdrops%2Faic%22%7D", "/drops/aic"),
        ("http://tok@api.edu.gd.gov.cn/https", "https://tok@api.edu.gd.gov.cn"),
        (
            "https://key:sec%2Fret@api.edu.gd.gov.cn/v1",
            "https://key:sec%2Fret@api.edu.gd.gov.cn/v1",
        ),
        (
            '{"conn_type": "postgres", "host": "pg", "login": "hub", "password": "p w",'
            ' "port": 5432, "schema": "dlr", "extra": {"sslmode": "require"}}',
            "postgresql+psycopg://hub:p%20w@pg:5432/dlr?sslmode=require",
        ),
        ('{"conn_type": "fs", "extra": "{\\"path\\": \\"/drops/edu\\"}"}', "/drops/edu"),
        ("/drops/edu", "/drops/edu"),
    ],
)
def test_airflow_connections_become_locations(airflow: str, location: str) -> None:
    assert location_from_airflow(airflow) == location


@pytest.mark.parametrize(
    "bad", ["ftp://host/x", '{"conn_type": "mysql"}', "mysql://root@/x?__extra__=%7Bnot-json"]
)
def test_unusable_connections_fail_clearly(bad: str) -> None:
    with pytest.raises(ConnectionFormatError):
        location_from_airflow(bad)


def test_settings_resolve_airflow_conn_env_and_prefer_onehub_conn(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_DCA_REGISTRY", "mysql://root@db:3306/dca")
    settings = Settings(departments_dir=tmp_path)
    assert settings.connection("dca_registry") == "mysql+pymysql://root@db:3306/dca"

    monkeypatch.setenv("ONEHUB_CONN_DCA_REGISTRY", "sqlite:////x.db")
    assert settings.connection("dca_registry") == "sqlite:////x.db"


def _airflow_uri(url: str) -> str:
    parsed = sa.make_url(url)
    if parsed.drivername == "sqlite":
        return "sqlite://" + quote(str(parsed.database), safe="")
    scheme = {"mysql+pymysql": "mysql", "postgresql+psycopg": "postgres"}[parsed.drivername]
    query = "?charset=utf8mb4" if scheme == "mysql" else ""
    return f"{scheme}://{parsed.username}@{parsed.host}:{parsed.port}/{parsed.database}{query}"


@pytest.mark.parametrize(
    "backend",
    [
        "sqlite",
        pytest.param("mariadb", marks=pytest.mark.mariadb),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ],
)
def test_a_sql_source_reads_through_an_airflow_connection_uri(
    backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = str(request.getfixturevalue(f"{backend}_url"))
    dept = SqlDepartment(url, backend)
    try:
        recs = [Rec(i, 1, T0) for i in range(1, 6)]
        dept.write(recs)
        monkeypatch.setenv("AIRFLOW_CONN_DLR_REGISTRY", _airflow_uri(url))
        location = Settings(departments_dir=tmp_path).connection("dlr_registry")
        assert "+" in location.split("://")[0] or location.startswith("sqlite")
        dept.url = location  # the department is now reached as the settings resolve it
        mirror = Mirror()
        src = dept.source(batch_size=2)
        mirror.apply(src, run(dept, src, None))
        assert mirror.rows == expected({r.id: r for r in recs})
    finally:
        dept.close()
