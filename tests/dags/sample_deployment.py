"""A small deployment for the orchestration tests: sample department systems, a hub with a clock
the test moves, and the environment the CLI and the DAG subprocesses read."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from exchange.hub import Hub
from onehub.settings import Settings
from sample_systems import generate
from sample_systems.manifest import Manifest

REPO = Path(__file__).resolve().parents[2]
T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)


@dataclass
class Clock:
    """The hub's clock, moved by the test."""

    at: dt.datetime = T0

    def __call__(self) -> dt.datetime:
        return self.at

    def advance(self, hours: float) -> dt.datetime:
        self.at += dt.timedelta(hours=hours)
        return self.at


@dataclass
class Deployment:
    root: Path
    settings: Settings
    hub: Hub
    clock: Clock
    manifest: Manifest
    env: dict[str, str] = field(default_factory=dict)

    def generate(self, *, sources: list[str], dirty_rate: float, seed: int = 11) -> Manifest:
        """(Re)write the named sample department systems."""
        self.manifest = generate(
            out_dir=self.settings.departments_dir,
            seed=seed,
            people=120,
            companies=40,
            dirty_rate=dirty_rate,
            sources=sources,
        )
        return self.manifest

    def run(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """Run ``onehub ARGS`` in a fresh process (Airflow configures itself per process)."""
        return subprocess.run(
            [str(Path(sys.executable).parent / "onehub"), *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.root,
        )
