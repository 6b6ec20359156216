"""GET /v1/supervision/statistics and /v1/supervision/cards: supervisor statistics (效能監督)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from exchange.api import problem
from exchange.api.deps import CallerDep, HubDep, SessionDep
from exchange.supervision import CardView, list_cards, statistics

router = APIRouter(prefix="/v1/supervision", tags=["supervision"])


class Card(BaseModel):
    """A yellow or red card raised against a source."""

    id: int
    source: str
    department: str
    kind: str = Field(description="freshness or quality")
    color: str = Field(description="yellow or red")
    reason: str
    sla_hours: float
    last_load_at: dt.datetime | None
    raised_at: dt.datetime
    closed_at: dt.datetime | None
    closed_because: str | None = Field(description="resolved, escalated or changed")


class SourceFigures(BaseModel):
    """One source's health now and its ingest runs over the window."""

    source: str
    department: str
    sla_hours: float
    last_load_at: dt.datetime | None
    age_hours: float | None
    freshness: str = Field(description="green, yellow, red, or not_started")
    quality: str = Field(description="green, yellow or red")
    rejected_runs_since_last_load: int
    runs: int
    succeeded: int
    failed: int
    rejected_by_quality: int
    rows_in: int
    rows_loaded: int
    rows_quarantined: int


class SupervisionStatistics(BaseModel):
    """Supervisor statistics: every source's health and figures, and the open cards."""

    as_of: dt.datetime
    window_hours: float
    yellow_cards: int
    red_cards: int
    sources: list[SourceFigures]
    open_cards: list[Card]


def _card(view: CardView) -> Card:
    return Card.model_validate(view, from_attributes=True)


@router.get(
    "/statistics",
    response_model=SupervisionStatistics,
    summary="Supervisor statistics (效能監督): freshness, quality and cards per source",
    responses=problem.responses(401, 403, 429),
)
def get_statistics(
    hub: HubDep,
    caller: CallerDep,
    window_hours: Annotated[
        float, Query(gt=0, le=24 * 366, description="Count ingest runs of the last N hours")
    ] = 24 * 7,
) -> SupervisionStatistics:
    """Live freshness and quality of every source, its runs in the window, and the open cards."""
    stats = statistics(hub, now=hub.now(), window_hours=window_hours)
    cards = [_card(c) for c in stats.open_cards]
    return SupervisionStatistics(
        as_of=stats.as_of,
        window_hours=stats.window_hours,
        yellow_cards=sum(1 for c in cards if c.color == "yellow"),
        red_cards=sum(1 for c in cards if c.color == "red"),
        sources=[
            SourceFigures(
                source=s.health.source,
                department=s.health.department,
                sla_hours=s.health.sla_hours,
                last_load_at=s.health.last_load_at,
                age_hours=round(s.health.age_hours, 2) if s.health.age_hours is not None else None,
                freshness=s.health.freshness,
                quality=s.health.quality,
                rejected_runs_since_last_load=s.health.rejected_runs,
                runs=s.runs,
                succeeded=s.succeeded,
                failed=s.failed,
                rejected_by_quality=s.rejected_by_quality,
                rows_in=s.rows_in,
                rows_loaded=s.rows_loaded,
                rows_quarantined=s.rows_quarantined,
            )
            for s in stats.sources
        ],
        open_cards=cards,
    )


@router.get(
    "/cards",
    response_model=list[Card],
    summary="Supervision cards, open or all",
    responses=problem.responses(401, 403, 429),
)
def get_cards(
    session: SessionDep,
    caller: CallerDep,
    include_closed: Annotated[bool, Query(description="Closed cards too (the history)")] = False,
    source: Annotated[str | None, Query(max_length=64)] = None,
) -> list[Card]:
    """The stored cards, oldest first."""
    return [
        _card(c) for c in list_cards(session=session, include_closed=include_closed, source=source)
    ]
