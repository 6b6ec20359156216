"""A small real deployment for the page tests: sample department systems, every pipeline
(ingest, quality gate, lake, issuance) on a SQLite hub with a clock the tests move, consumers
registered as the CLI does, and the exchange app served by uvicorn on a free port."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn

from exchange.api.app import ApiConfig, create_app
from exchange.consumer import register
from exchange.hub import Hub
from exchange.issuance import issue_licenses
from exchange.pipeline import ingest_source
from onehub.database import create_schema, signer_for
from onehub.settings import Settings, build_hub
from sample_systems import generate, mutate
from sample_systems.manifest import Manifest

# The hub's "now": 11:00 China time on 1 December 2026; the departments' clock is 09:00 that day.
T0 = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC)
DEPARTMENT_NOW = dt.datetime(2026, 12, 1, 9, 0)
SQL_SOURCES = ["dca_marriage", "dlr_title", "hrss_insurance"]


@dataclass
class Clock:
    """The hub's clock, moved by the tests."""

    at: dt.datetime = T0

    def __call__(self) -> dt.datetime:
        return self.at


@dataclass
class Served:
    """The deployment and the URL it is served at."""

    hub: Hub
    clock: Clock
    manifest: Manifest
    base_url: str
    keys: dict[str, str] = field(default_factory=dict)


def _age_files(folder: Path) -> None:
    # File drops are read only once they have not changed for a while (a department may still
    # be writing them); these were written a moment ago.
    past = time.time() - 3600
    for path in folder.rglob("*"):
        if path.is_file():
            os.utime(path, (past, past))


def build(root: Path) -> tuple[Hub, Clock, Manifest]:
    """Sample systems, every pipeline run twice (the second run with changed rows), licenses."""
    settings = Settings(data_dir=root / "data", departments_dir=root / "departments")
    manifest = generate(
        out_dir=settings.departments_dir,
        seed=11,
        people=400,
        companies=80,
        dirty_rate=0.01,
        now=DEPARTMENT_NOW,
    )
    _age_files(settings.departments_dir)
    clock = Clock()
    hub = build_hub(settings, create_secrets=True)
    create_schema(hub.engine)
    hub = dataclasses.replace(hub, now=clock)
    signer = signer_for(hub)
    clock.at = T0 - dt.timedelta(hours=2)
    for name in sorted(hub.catalog.sources):
        ingest_source(hub, name)
    issue_licenses(hub, signer)
    # A second run an hour later with updated and new rows: a trend of two points per source.
    mutate(
        out_dir=settings.departments_dir,
        manifest=manifest,
        seed=12,
        updates=3,
        inserts=6,
        now=DEPARTMENT_NOW + dt.timedelta(minutes=30),
        sources=SQL_SOURCES,
    )
    clock.at = T0 - dt.timedelta(hours=1)
    for name in SQL_SOURCES:
        ingest_source(hub, name)
    issue_licenses(hub, signer)
    clock.at = T0
    return hub, clock, manifest


def add_consumer(hub: Hub, name: str, *, kind: str, department: str) -> str:
    """Register a consumer as `onehub consumers add` does; its key."""
    with hub.sessions.begin() as session:
        _consumer, key = register(
            session=session,
            catalog=hub.catalog,
            name=name,
            kind=kind,  # type: ignore[arg-type]
            department=department,
            now=hub.now(),
        )
    return key


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(hub: Hub) -> Iterator[str]:
    """The exchange app (API and pages) served by uvicorn in a thread; its base URL."""
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
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
