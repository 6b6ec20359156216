"""Fixtures of the page tests: Debian's Chromium (installed here when missing), one served
deployment for the session, and a browser context per test."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from deployment import Served, add_consumer, build, serve

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Debian packages: the browser, and a CJK font so that screenshots show Chinese, not boxes.
PACKAGES = ["chromium", "fonts-wqy-microhei"]
ARTIFACTS = Path(__file__).with_name("artifacts")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"the page tests need Chromium: {reason}", pytrace=False)
    pytest.skip(f"the page tests need Chromium: {reason}")


def _font_missing() -> bool:
    if shutil.which("fc-list") is None:
        return True
    listed = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True, check=False)
    return not listed.stdout.strip()


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """Debian's Chromium, installed with apt-get when missing and we are root."""
    if not CHROMIUM.exists() or _font_missing():
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            if not CHROMIUM.exists():
                _unavailable(f"{CHROMIUM} is missing and apt-get cannot run as this user")
        else:
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            command = ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]
            done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
            if done.returncode != 0:  # a stale package index: refresh it once
                subprocess.run(["apt-get", "update"], capture_output=True, env=env, check=False)
                done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
            if not CHROMIUM.exists():
                _unavailable(f"apt-get install chromium failed: {done.stderr[-500:]}")
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium_path: Path) -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(chromium_path), args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One deployment for the session, served; consumers of the kinds the pages serve."""
    root = tmp_path_factory.mktemp("pages")
    hub, clock, manifest = build(root)
    keys = {
        "dps": add_consumer(hub, "tianhe-counter-dps", kind="counter", department="dps"),
        "dhurd": add_consumer(hub, "tianhe-counter-dhurd", kind="counter", department="dhurd"),
        "aic": add_consumer(hub, "tianhe-counter-aic", kind="counter", department="aic"),
        "hall": add_consumer(hub, "gd-online-hall", kind="online_hall", department="dhurd"),
        "supervisor": add_consumer(hub, "supervision-office", kind="department", department="drc"),
    }
    with serve(hub) as base_url:
        yield Served(hub=hub, clock=clock, manifest=manifest, base_url=base_url, keys=keys)
    hub.engine.dispose()


@pytest.fixture
def context(browser: object, served: Served) -> Iterator[object]:
    """A fresh browser context (cookies, storage) at a counter screen's size."""
    made = browser.new_context(  # type: ignore[attr-defined]
        base_url=served.base_url,
        viewport={"width": 1280, "height": 800},
        locale="zh-CN",
    )
    yield made
    made.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
