"""GET /v1/supervision/*: supervisor statistics (效能監督): sources' health and cards, departments
by onboarding batch, ingest-run trends, and exchange use."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from exchange.api import problem
from exchange.api.deps import CallerDep, HubDep, SessionDep
from exchange.supervision import (
    CardView,
    departments,
    exchange_use,
    list_cards,
    run_trends,
    statistics,
)

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


class DepartmentOut(BaseModel):
    """A department of the reform plan's annex and whether it is connected."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "dca",
                    "name_zh": "广东省民政厅",
                    "short_zh": "民政厅",
                    "name_en": "Department of Civil Affairs of Guangdong Province",
                    "batch": 1,
                    "deadline": "2016-03-31",
                    "onboarded": True,
                    "sources": ["dca_marriage"],
                    "loaded": True,
                }
            ]
        }
    )

    code: str
    name_zh: str
    short_zh: str
    name_en: str
    batch: int = Field(description="Onboarding batch (第一批/第二批/第三批)")
    deadline: dt.date = Field(description="When the batch had to be connected")
    onboarded: bool = Field(description="Declared onboarded in the catalog")
    sources: list[str] = Field(description="Its catalog sources")
    loaded: bool = Field(description="At least one of its sources has loaded rows")


class RunPointOut(BaseModel):
    run_id: int
    started_at: dt.datetime
    status: str = Field(description="success or failed")
    rows_in: int
    rows_loaded: int
    rows_quarantined: int
    quarantine_rate: float | None = Field(description="rows_quarantined / rows_in; null: no rows")


class SourceTrend(BaseModel):
    source: str
    runs: list[RunPointOut] = Field(description="Oldest first")


class DailyUseOut(BaseModel):
    day: dt.date = Field(description="Calendar day in China (UTC+8)")
    department: str = Field(description="The calling consumers' department")
    lookups: int
    material_checks: int


class ItemSavingOut(BaseModel):
    service_item: str
    checks: int = Field(description="Successful material checks")
    certificates_not_asked: int = Field(
        description="Materials covered by a license (免提交), summed over the checks"
    )
    by_material: dict[str, int] = Field(description="Material code -> times covered")


class ExchangeUseOut(BaseModel):
    """Exchange use: lookups per day and department, certificates not asked for per item."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "as_of": "2026-12-01T03:00:00Z",
                    "days": 14,
                    "since": "2026-11-18",
                    "daily": [
                        {
                            "day": "2026-12-01",
                            "department": "dps",
                            "lookups": 3,
                            "material_checks": 12,
                        }
                    ],
                    "savings": [
                        {
                            "service_item": "talent_household_registration",
                            "checks": 12,
                            "certificates_not_asked": 20,
                            "by_material": {"degree_cert": 12, "insurance_proof": 8},
                        }
                    ],
                }
            ]
        }
    )

    as_of: dt.datetime
    days: int
    since: dt.date
    daily: list[DailyUseOut]
    savings: list[ItemSavingOut]


@router.get(
    "/departments",
    response_model=list[DepartmentOut],
    summary="Departments by onboarding batch, onboarded or not",
    responses=problem.responses(401, 403, 429),
)
def get_departments(hub: HubDep, caller: CallerDep) -> list[DepartmentOut]:
    """Every department of the reform plan, by batch: declared onboarded, its sources, and
    whether one of them has loaded."""
    return [DepartmentOut.model_validate(d, from_attributes=True) for d in departments(hub)]


@router.get(
    "/trends",
    response_model=list[SourceTrend],
    summary="Each source's last ingest runs (quarantine-rate trend)",
    responses=problem.responses(401, 403, 429),
)
def get_trends(
    hub: HubDep,
    caller: CallerDep,
    last: Annotated[int, Query(ge=1, le=500, description="Runs per source")] = 30,
) -> list[SourceTrend]:
    """Per catalog source, its last finished ingest runs with rows read, loaded and
    quarantined, oldest first."""
    return [
        SourceTrend(
            source=name,
            runs=[
                RunPointOut(
                    run_id=p.run_id,
                    started_at=p.started_at,
                    status=p.status,
                    rows_in=p.rows_in,
                    rows_loaded=p.rows_loaded,
                    rows_quarantined=p.rows_quarantined,
                    quarantine_rate=p.quarantine_rate,
                )
                for p in points
            ],
        )
        for name, points in run_trends(hub, last=last).items()
    ]


@router.get(
    "/usage",
    response_model=ExchangeUseOut,
    summary="Exchange use: lookups per day and department, certificates not asked for",
    responses=problem.responses(401, 403, 429),
)
def get_usage(
    hub: HubDep,
    caller: CallerDep,
    days: Annotated[int, Query(ge=1, le=366, description="China days up to today")] = 14,
) -> ExchangeUseOut:
    """From the audit log: successful lookups and material checks per day and calling
    department, and per service item the materials covered by a license, the paper
    certificates applicants were not asked for (the reform's measure). Aggregates only."""
    use = exchange_use(hub, now=hub.now(), days=days)
    return ExchangeUseOut.model_validate(
        {
            "as_of": use.as_of,
            "days": use.days,
            "since": use.since,
            "daily": [DailyUseOut.model_validate(d, from_attributes=True) for d in use.daily],
            "savings": [ItemSavingOut.model_validate(s, from_attributes=True) for s in use.savings],
        }
    )
