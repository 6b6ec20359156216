"""Supervision cards (效能監督) with an injected clock: a real ingest of a sample department system,
then the clock moves past 1× and 2× the source's freshness SLA; a fresh load clears the card.
The cards are read back the way supervisors read them: `onehub supervision` and the API."""

from __future__ import annotations

import datetime as dt
import os

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sample_deployment import T0, Deployment
from typer.testing import CliRunner

from exchange.api.app import create_app
from exchange.consumer import register
from exchange.hub import Hub
from exchange.model import IngestRun, SupervisionCard
from exchange.pipeline import QualityThresholdError, ingest_source
from exchange.supervision import (
    QUALITY_REJECTION_PREFIX,
    CardRaisedError,
    KeyRotationDueError,
    assess,
    key_rotation_reminder,
    list_cards,
    raise_if_key_rotation_due,
    supervise,
)
from onehub.cli import app
from onehub.database import signer_for

SOURCE = "dca_marriage"


def _api_key(hub: Hub) -> str:
    with hub.sessions.begin() as session:
        _consumer, key = register(
            session=session,
            catalog=hub.catalog,
            name="supervisor-desk",
            kind="department",
            department="dca",
            now=hub.now(),
        )
    return key


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})
    return result.exit_code, result.output


def _card_rows(hub: Hub) -> list[tuple[str, str, str, str | None]]:
    with hub.sessions() as session:
        return [
            (c.kind, c.color, c.source, c.closed_because)
            for c in session.scalars(sa.select(SupervisionCard).order_by(SupervisionCard.id))
        ]


@pytest.mark.parametrize("deployment", ["sqlite", "postgresql"], indirect=True)
def test_freshness_cards_go_yellow_then_red_and_a_fresh_load_clears_them(
    deployment: Deployment,
) -> None:
    hub, clock = deployment.hub, deployment.clock
    sla = hub.catalog.source(SOURCE).freshness_sla_hours
    report = ingest_source(hub, SOURCE)  # the last load, at T0
    assert report.rows_loaded == deployment.manifest.sources[SOURCE].expected_loaded > 0

    clock.at = T0 + dt.timedelta(hours=0.9 * sla)
    result = supervise(hub, now=clock())
    assert result.raised == [] and result.open == []
    by_source = {h.source: h for h in result.health}
    assert by_source[SOURCE].freshness == "green"
    # Sources that never ran are not carded: they are not deployed yet.
    assert {h.freshness for n, h in by_source.items() if n != SOURCE} == {"not_started"}

    clock.at = T0 + dt.timedelta(hours=1.2 * sla)
    result = supervise(hub, now=clock())
    assert [(c.kind, c.color, c.source) for c in result.raised] == [("freshness", "yellow", SOURCE)]
    with pytest.raises(CardRaisedError, match="YELLOW freshness card"):
        result.raise_for_new_cards()
    again = supervise(hub, now=clock())  # the same card stands: nothing new to alert on
    assert again.raised == [] and [c.id for c in again.open] == [result.raised[0].id]
    code, out = _cli("supervision")  # the CLI reads the stored cards and the live health
    assert code == 0, out
    assert "yellow" in out and "last loaded" in out

    clock.at = T0 + dt.timedelta(hours=2.2 * sla)
    result = supervise(hub, now=clock())
    assert [(c.kind, c.color) for c in result.raised] == [("freshness", "red")]
    assert [(c.color, c.closed_because) for c in result.closed] == [("yellow", "escalated")]
    response = TestClient(create_app(hub)).get(
        "/v1/supervision/statistics", headers={"Authorization": f"Bearer {_api_key(hub)}"}
    )
    assert response.status_code == 200, response.text
    stats = response.json()
    assert stats["red_cards"] == 1 and stats["yellow_cards"] == 0
    figures = {s["source"]: s for s in stats["sources"]}[SOURCE]
    assert figures["freshness"] == "red"
    assert figures["age_hours"] == pytest.approx(2.2 * sla, abs=0.01)
    assert figures["runs"] == 1 and figures["rows_loaded"] == report.rows_loaded
    assert [c["color"] for c in stats["open_cards"]] == ["red"]

    ingest_source(hub, SOURCE)  # a fresh load (nothing new at the department: still a load)
    result = supervise(hub, now=clock())
    assert result.raised == [] and result.open == []
    assert [(c.color, c.closed_because) for c in result.closed] == [("red", "resolved")]
    assert _card_rows(hub) == [
        ("freshness", "yellow", SOURCE, "escalated"),
        ("freshness", "red", SOURCE, "resolved"),
    ]
    code, out = _cli("supervision", "cards")
    assert code == 0 and "open cards: none" in out


def test_the_api_needs_a_key(deployment: Deployment) -> None:
    client = TestClient(create_app(deployment.hub))
    assert client.get("/v1/supervision/statistics").status_code == 401
    assert client.get("/v1/supervision/cards").status_code == 401


def test_a_batch_rejected_by_the_quality_gate_raises_a_card(deployment: Deployment) -> None:
    hub, clock = deployment.hub, deployment.clock
    sla = hub.catalog.source(SOURCE).freshness_sla_hours
    deployment.generate(sources=[SOURCE], dirty_rate=0.4)
    with pytest.raises(QualityThresholdError):
        ingest_source(hub, SOURCE)
    with hub.sessions() as session:
        run = session.scalars(sa.select(IngestRun)).one()
    assert run.status == "failed" and run.error is not None
    assert run.error.startswith(QUALITY_REJECTION_PREFIX)  # what supervision recognises

    clock.advance(1)
    result = supervise(hub, now=clock())
    kinds = {(c.kind, c.color) for c in result.raised}
    # Never loaded: freshness counts from the first attempt, 1 h ago, within the SLA.
    assert kinds == {("quality", "yellow")}
    assert result.raised[0].reason.startswith(f"{SOURCE}: the quality gate rejected 1 run")

    clock.advance(sla)  # the department has not fixed its export within the SLA
    with pytest.raises(QualityThresholdError):
        ingest_source(hub, SOURCE)
    result = supervise(hub, now=clock())
    assert {(c.kind, c.color) for c in result.raised} == {
        ("quality", "red"),
        ("freshness", "yellow"),
    }
    code, out = _cli("supervision", "check", "--now", clock().isoformat())
    assert code == 0, out  # evaluated again: nothing new, so no alert
    assert "1 yellow, 1 red" in out

    deployment.generate(sources=[SOURCE], dirty_rate=0.0)  # the department fixed its export
    ingest_source(hub, SOURCE)
    result = supervise(hub, now=clock())
    assert result.open == []
    assert {(c.kind, c.closed_because) for c in result.closed} == {
        ("quality", "resolved"),
        ("freshness", "resolved"),
    }


def test_check_exits_1_when_it_raises_a_card(deployment: Deployment) -> None:
    hub = deployment.hub
    ingest_source(hub, SOURCE)
    late = T0 + dt.timedelta(hours=hub.catalog.source(SOURCE).freshness_sla_hours + 1)
    code, out = _cli("supervision", "check", "--now", late.isoformat(), "--source", SOURCE)
    assert code == 1 and "yellow" in out
    code, out = _cli("supervision", "check", "--now", late.isoformat(), "--source", SOURCE)
    assert code == 0, out
    code, out = _cli("supervision", "cards", "--all")
    assert code == 0 and "freshness" in out


def test_a_file_drop_run_that_found_no_file_is_not_a_load(deployment: Deployment) -> None:
    hub, clock = deployment.hub, deployment.clock
    source = "edu_degree"
    deployment.generate(sources=[source], dirty_rate=0.0)
    drop = deployment.settings.departments_dir / "edu_drop"
    for path in drop.glob("*.csv"):  # written a while ago: complete, so the connector takes it
        os.utime(path, (path.stat().st_atime, path.stat().st_mtime - 600))
    first = ingest_source(hub, source)
    assert first.batches > 0  # the file was taken and archived
    sla = hub.catalog.source(source).freshness_sla_hours
    clock.advance(sla * 1.5)
    empty = ingest_source(hub, source)  # the department dropped nothing since
    assert empty.batches == 0
    (health,) = assess(hub, now=clock(), sources=[source])
    assert health.freshness == "yellow"
    assert health.last_load_at == T0


def test_only_one_open_card_per_source_and_kind(deployment: Deployment) -> None:
    hub = deployment.hub

    def card() -> SupervisionCard:
        return SupervisionCard(
            source=SOURCE,
            department="dca",
            kind="freshness",
            color="yellow",
            reason="test",
            sla_hours=24,
            last_load_at=None,
            ingest_run_id=None,
            raised_at=T0,
            closed_at=None,
            closed_because=None,
        )

    with hub.sessions.begin() as session:
        session.add(card())
    with pytest.raises(sa.exc.IntegrityError), hub.sessions.begin() as session:
        session.add(card())
    closed = card()
    closed.closed_at, closed.closed_because = T0, "resolved"
    with hub.sessions.begin() as session:
        session.add(closed)  # closed cards are history: any number of them
    with hub.sessions() as session:
        assert len(list_cards(session=session, include_closed=True)) == 2


def test_key_rotation_reminder(deployment: Deployment) -> None:
    hub, clock = deployment.hub, deployment.clock
    assert not key_rotation_reminder(hub, now=clock(), max_age_days=365).due  # no key yet
    signer_for(hub)  # the first signing key, created at T0
    clock.advance(24 * 300)
    reminder = key_rotation_reminder(hub, now=clock(), max_age_days=365)
    assert not reminder.due and reminder.age_days == pytest.approx(300)
    raise_if_key_rotation_due(reminder)
    clock.advance(24 * 70)
    reminder = key_rotation_reminder(hub, now=clock(), max_age_days=365)
    assert reminder.due
    with pytest.raises(KeyRotationDueError, match="onehub keys rotate"):
        raise_if_key_rotation_due(reminder)
