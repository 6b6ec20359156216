"""Fixtures of the orchestration tests (tests/dags)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from sample_deployment import Clock, Deployment

from onehub.database import create_schema
from onehub.settings import Settings, build_hub
from sample_systems import generate


@pytest.fixture
def deployment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[Deployment]:
    """Sample departments (dca_marriage, clean) and a hub on SQLite, its clock at T0."""
    env = {
        "ONEHUB_DATA_DIR": str(tmp_path / "data"),
        "ONEHUB_DEPARTMENTS_DIR": str(tmp_path / "departments"),
        "ONEHUB_TASK_RETRY_DELAY_SECONDS": "1",
    }
    db_url = getattr(request, "param", None)
    if db_url == "postgresql":
        env["ONEHUB_DB_URL"] = str(request.getfixturevalue("postgres_url"))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    manifest = generate(
        out_dir=settings.departments_dir,
        seed=11,
        people=120,
        companies=40,
        dirty_rate=0.0,
        sources=["dca_marriage"],
    )
    clock = Clock()
    hub = build_hub(settings, create_secrets=True)
    create_schema(hub.engine)
    hub = dataclasses.replace(hub, now=clock)
    yield Deployment(
        root=tmp_path, settings=settings, hub=hub, clock=clock, manifest=manifest, env=env
    )
    hub.engine.dispose()
