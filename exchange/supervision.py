"""Supervision (效能監督): yellow and red cards per source, from the ingest-run records.

The rules (docs/orchestration.md explains them for supervisors):

- **Freshness.** A source whose last load is older than its ``freshness_sla_hours`` gets a
  yellow card; older than twice the SLA, a red card. A *load* is an ingest run that succeeded;
  for a file drop only one that took at least one file counts, so a department that stops
  exporting is late even though the hub's own runs keep succeeding. A source never loaded is
  aged from its first attempted run; one never attempted has no card ("not started": it is not
  deployed yet).
- **Quality.** A batch rejected by the quality gate since the last load gives a yellow card;
  rejections going on for longer than the SLA, a red card.
- A fresh load clears both.

Cards are stored (:class:`exchange.model.SupervisionCard`), at most one open per source and kind.
A change of colour closes the old card and opens a new one, so the table is the history a
supervisor reviews. The clock is always a parameter (``now``), never read here.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog_schemas.errors import FatalError
from catalog_schemas.model import FileConnector, Source
from exchange.hub import Hub
from exchange.model import AuditEntry, Consumer, IngestRun, SupervisionCard
from license_store.key import KeyRing

logger = logging.getLogger(__name__)

Color = Literal["green", "yellow", "red"]
Freshness = Literal["green", "yellow", "red", "not_started"]
CardKind = Literal["freshness", "quality"]
CARD_KINDS: tuple[CardKind, ...] = ("freshness", "quality")

# exchange.pipeline records a failed run's error as "<exception class>: <message>"; the quality
# gate's is QualityThresholdError (error code quality_threshold_exceeded). Spelled out here so
# that reading the cards does not import the pipeline (and great_expectations with it).
QUALITY_REJECTION_PREFIX = "QualityThresholdError:"


class CardRaisedError(FatalError):
    """A supervision card was raised or escalated: the task fails so the deployment is alerted."""

    code = "supervision_card_raised"
    http_status = 409


class KeyRotationDueError(FatalError):
    """The active signing key is older than the rotation period."""

    code = "key_rotation_due"
    http_status = 409


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    # SQLite hands timezone-aware columns back naive; the hub writes UTC everywhere.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


def _hours(delta: dt.timedelta) -> float:
    return delta.total_seconds() / 3600


@dataclass(frozen=True)
class SourceHealth:
    """What supervision knows about one source at ``now``."""

    source: str
    department: str
    sla_hours: float
    last_load_at: dt.datetime | None
    age_hours: float | None  # since the last load, or since the first attempt if never loaded
    freshness: Freshness
    quality: Color
    rejected_runs: int  # runs rejected by the quality gate since the last load
    first_rejection_at: dt.datetime | None
    first_rejected_run_id: int | None
    last_run_status: str | None

    def wanted_cards(self) -> dict[CardKind, tuple[Color, str]]:
        """The cards this health calls for: kind -> (colour, reason)."""
        out: dict[CardKind, tuple[Color, str]] = {}
        if (self.freshness == "yellow" or self.freshness == "red") and self.age_hours is not None:
            since = (
                f"last loaded {self.last_load_at.isoformat(timespec='minutes')}"
                if self.last_load_at
                else "never loaded since its first run"
            )
            over = ", more than twice over" if self.freshness == "red" else ""
            out["freshness"] = (
                self.freshness,
                f"{self.source}: {since}, {self.age_hours:.1f} h ago "
                f"(SLA {self.sla_hours:g} h{over})",
            )
        if self.quality in ("yellow", "red") and self.first_rejection_at is not None:
            out["quality"] = (
                self.quality,
                f"{self.source}: the quality gate rejected {self.rejected_runs} run(s) since the "
                f"last load, the first at {self.first_rejection_at.isoformat(timespec='minutes')}"
                + (
                    f" (longer than the SLA of {self.sla_hours:g} h)"
                    if self.quality == "red"
                    else ""
                ),
            )
        return out


def _grade(age_hours: float, sla_hours: float) -> Color:
    if age_hours > 2 * sla_hours:
        return "red"
    if age_hours > sla_hours:
        return "yellow"
    return "green"


def assess_source(
    session: Session, source: Source, department: str, *, now: dt.datetime
) -> SourceHealth:
    """The freshness and quality of one source at ``now`` (reads only)."""
    runs = IngestRun
    loads = sa.select(runs.id, runs.finished_at).where(
        runs.source == source.name, runs.status == "success"
    )
    if isinstance(source.connector, FileConnector):
        loads = loads.where(runs.batches > 0)
    last_load = session.execute(loads.order_by(runs.id.desc()).limit(1)).first()
    last_load_id = last_load.id if last_load else 0
    last_load_at = _utc(last_load.finished_at) if last_load else None
    rejections = session.execute(
        sa.select(runs.id, runs.finished_at, runs.started_at)
        .where(
            runs.source == source.name,
            runs.id > last_load_id,
            runs.status == "failed",
            runs.error.like(QUALITY_REJECTION_PREFIX + "%"),
        )
        .order_by(runs.id)
    ).all()
    last_status = session.scalar(
        sa.select(runs.status)
        .where(runs.source == source.name, runs.status != "running")
        .order_by(runs.id.desc())
        .limit(1)
    )
    sla = source.freshness_sla_hours
    freshness: Freshness
    age: float | None = None
    if last_load_at is not None:
        age = _hours(now - last_load_at)
        freshness = _grade(age, sla)
    else:
        first = _utc(
            session.scalar(
                sa.select(sa.func.min(runs.started_at)).where(runs.source == source.name)
            )
        )
        if first is None:
            freshness = "not_started"
        else:
            age = _hours(now - first)
            freshness = _grade(age, sla)
    quality: Color = "green"
    first_rejection_at = None
    if rejections:
        first_rejection_at = _utc(rejections[0].finished_at or rejections[0].started_at)
        assert first_rejection_at is not None  # started_at is never null
        quality = "red" if _hours(now - first_rejection_at) > sla else "yellow"
    return SourceHealth(
        source=source.name,
        department=department,
        sla_hours=sla,
        last_load_at=last_load_at,
        age_hours=age,
        freshness=freshness,
        quality=quality,
        rejected_runs=len(rejections),
        first_rejection_at=first_rejection_at,
        first_rejected_run_id=rejections[0].id if rejections else None,
        last_run_status=last_status,
    )


def assess(
    hub: Hub, *, now: dt.datetime, sources: Iterable[str] | None = None
) -> list[SourceHealth]:
    """The health of every catalog source (or the named ones) at ``now``, by source name."""
    names = sorted(sources) if sources is not None else sorted(hub.catalog.sources)
    with hub.sessions() as session:
        return [
            assess_source(
                session, hub.catalog.source(name), hub.catalog.source(name).department, now=now
            )
            for name in names
        ]


@dataclass(frozen=True)
class CardView:
    """A stored card, detached from its session."""

    id: int
    source: str
    department: str
    kind: str
    color: str
    reason: str
    sla_hours: float
    last_load_at: dt.datetime | None
    raised_at: dt.datetime
    closed_at: dt.datetime | None
    closed_because: str | None

    @classmethod
    def of(cls, card: SupervisionCard) -> CardView:
        return cls(
            id=card.id,
            source=card.source,
            department=card.department,
            kind=card.kind,
            color=card.color,
            reason=card.reason,
            sla_hours=card.sla_hours,
            last_load_at=_utc(card.last_load_at),
            raised_at=_utc(card.raised_at) or card.raised_at,
            closed_at=_utc(card.closed_at),
            closed_because=card.closed_because,
        )


@dataclass(frozen=True)
class SupervisionResult:
    """What one evaluation found and changed."""

    health: list[SourceHealth]
    raised: list[CardView] = field(default_factory=list)
    closed: list[CardView] = field(default_factory=list)
    open: list[CardView] = field(default_factory=list)

    def counts(self) -> dict[str, Any]:
        """Counts and card ids only (what an Airflow XCom may carry)."""
        return {
            "sources": len(self.health),
            "yellow": sum(1 for c in self.open if c.color == "yellow"),
            "red": sum(1 for c in self.open if c.color == "red"),
            "raised": [c.id for c in self.raised],
            "closed": [c.id for c in self.closed],
        }

    def raise_for_new_cards(self) -> None:
        """CardRaisedError naming each card raised or escalated by this evaluation."""
        if self.raised:
            raise CardRaisedError(
                f"{len(self.raised)} supervision card(s) raised: "
                + "; ".join(
                    f"{c.color.upper()} {c.kind} card #{c.id} — {c.reason}" for c in self.raised
                )
            )


def supervise(
    hub: Hub, *, now: dt.datetime, sources: Iterable[str] | None = None
) -> SupervisionResult:
    """Assess the sources at ``now`` and bring the stored cards in line: raise, escalate, close."""
    health = assess(hub, now=now, sources=sources)
    names = [h.source for h in health]
    raised: list[SupervisionCard] = []
    closed: list[SupervisionCard] = []
    with hub.sessions.begin() as session:
        current = {
            (card.source, card.kind): card
            for card in session.scalars(
                sa.select(SupervisionCard).where(
                    SupervisionCard.source.in_(names), SupervisionCard.closed_at.is_(None)
                )
            )
        }
        for h in health:
            wanted = h.wanted_cards()
            for kind in CARD_KINDS:
                card = current.get((h.source, kind))
                want = wanted.get(kind)
                if card is not None and (want is None or want[0] != card.color):
                    because = (
                        "resolved"
                        if want is None
                        else ("escalated" if want[0] == "red" else "changed")
                    )
                    if _close(session, card, now=now, because=because):
                        closed.append(card)
                    else:
                        continue  # a concurrent evaluation got there first and decided
                elif card is not None:
                    continue  # the same card stands
                if want is None:
                    continue
                new = SupervisionCard(
                    source=h.source,
                    department=h.department,
                    kind=kind,
                    color=want[0],
                    reason=want[1],
                    sla_hours=h.sla_hours,
                    last_load_at=h.last_load_at,
                    ingest_run_id=h.first_rejected_run_id if kind == "quality" else None,
                    raised_at=now,
                    closed_at=None,
                    closed_because=None,
                )
                try:
                    with session.begin_nested():
                        session.add(new)
                except sa.exc.IntegrityError:
                    continue  # opened by a concurrent evaluation (the partial unique index)
                raised.append(new)
                logger.warning(
                    "supervision: %s %s card for %s: %s",
                    want[0],
                    kind,
                    h.source,
                    want[1],
                    extra={"source": h.source, "card": kind, "color": want[0]},
                )
        session.flush()
        open_cards = _open_cards(session, names)
        result = SupervisionResult(
            health=health,
            raised=[CardView.of(c) for c in raised],
            closed=[CardView.of(c) for c in closed],
            open=open_cards,
        )
    return result


def _close(session: Session, card: SupervisionCard, *, now: dt.datetime, because: str) -> bool:
    # Compare-and-swap: only the evaluation that still sees the card open closes it.
    done = session.execute(
        sa.update(SupervisionCard)
        .where(SupervisionCard.id == card.id, SupervisionCard.closed_at.is_(None))
        .values(closed_at=now, closed_because=because)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        return False
    session.refresh(card)
    return True


def _open_cards(session: Session, sources: Iterable[str] | None = None) -> list[CardView]:
    stmt = sa.select(SupervisionCard).where(SupervisionCard.closed_at.is_(None))
    if sources is not None:
        stmt = stmt.where(SupervisionCard.source.in_(list(sources)))
    return [CardView.of(c) for c in session.scalars(stmt.order_by(SupervisionCard.id))]


def list_cards(
    *, session: Session, include_closed: bool = False, source: str | None = None
) -> list[CardView]:
    """Stored cards, oldest first: the open ones, or every card ever raised."""
    stmt = sa.select(SupervisionCard)
    if not include_closed:
        stmt = stmt.where(SupervisionCard.closed_at.is_(None))
    if source is not None:
        stmt = stmt.where(SupervisionCard.source == source)
    return [CardView.of(c) for c in session.scalars(stmt.order_by(SupervisionCard.id))]


@dataclass(frozen=True)
class SourceStatistics:
    """One source's supervision figures over a window."""

    health: SourceHealth
    runs: int
    succeeded: int
    failed: int
    rejected_by_quality: int
    rows_in: int
    rows_loaded: int
    rows_quarantined: int


@dataclass(frozen=True)
class Statistics:
    """Supervisor statistics: per source health and run figures, and the open cards."""

    as_of: dt.datetime
    window_hours: float
    sources: list[SourceStatistics]
    open_cards: list[CardView]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def statistics(hub: Hub, *, now: dt.datetime, window_hours: float = 24 * 7) -> Statistics:
    """Live health of every source, its runs in the last ``window_hours``, and the open cards."""
    since = now - dt.timedelta(hours=window_hours)
    health = assess(hub, now=now)
    runs = IngestRun
    rejected = sa.case((runs.error.like(QUALITY_REJECTION_PREFIX + "%"), 1), else_=0)
    with hub.sessions() as session:
        figures = {
            row.source: row
            for row in session.execute(
                sa.select(
                    runs.source,
                    sa.func.count().label("runs"),
                    sa.func.sum(sa.case((runs.status == "success", 1), else_=0)).label("succeeded"),
                    sa.func.sum(sa.case((runs.status == "failed", 1), else_=0)).label("failed"),
                    sa.func.sum(rejected).label("rejected"),
                    sa.func.sum(runs.rows_in).label("rows_in"),
                    sa.func.sum(runs.rows_loaded).label("rows_loaded"),
                    sa.func.sum(runs.rows_quarantined).label("rows_quarantined"),
                )
                .where(runs.started_at >= since)
                .group_by(runs.source)
            )
        }
        cards = _open_cards(session)
    out = []
    for h in health:
        row = figures.get(h.source)
        out.append(
            SourceStatistics(
                health=h,
                runs=int(row.runs) if row else 0,
                succeeded=int(row.succeeded or 0) if row else 0,
                failed=int(row.failed or 0) if row else 0,
                rejected_by_quality=int(row.rejected or 0) if row else 0,
                rows_in=int(row.rows_in or 0) if row else 0,
                rows_loaded=int(row.rows_loaded or 0) if row else 0,
                rows_quarantined=int(row.rows_quarantined or 0) if row else 0,
            )
        )
    return Statistics(as_of=now, window_hours=window_hours, sources=out, open_cards=cards)


@dataclass(frozen=True)
class KeyReminder:
    """Whether the active signing key is due for rotation."""

    key_id: str | None
    age_days: float | None
    max_age_days: float
    due: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def key_rotation_reminder(hub: Hub, *, now: dt.datetime, max_age_days: float) -> KeyReminder:
    """Check the active signing key's age against the rotation period (no key: nothing is due)."""
    with hub.sessions() as session:
        key = KeyRing(issuer_did=hub.issuer_did).active_key(session=session)
    if key is None:
        return KeyReminder(key_id=None, age_days=None, max_age_days=max_age_days, due=False)
    created = _utc(key.created_at) or now
    age = (now - created).total_seconds() / 86400
    return KeyReminder(
        key_id=key.kid, age_days=round(age, 2), max_age_days=max_age_days, due=age > max_age_days
    )


def raise_if_key_rotation_due(reminder: KeyReminder) -> None:
    """KeyRotationDueError when the reminder says the key is due."""
    if reminder.due:
        raise KeyRotationDueError(
            f"signing key {reminder.key_id} is {reminder.age_days:.0f} days old, past the "
            f"rotation period of {reminder.max_age_days:g} days: run `onehub keys rotate`"
        )


@dataclass(frozen=True)
class DepartmentStatus:
    """A department of the reform plan: its onboarding batch and whether it is connected."""

    code: str
    name_zh: str
    short_zh: str
    name_en: str
    batch: int
    deadline: dt.date
    onboarded: bool  # as the catalog declares it
    sources: list[str]
    loaded: bool  # at least one of its sources has had a load


def departments(hub: Hub) -> list[DepartmentStatus]:
    """Every catalog department by batch then code, with its sources and whether one loaded."""
    by_department: dict[str, list[str]] = {}
    for name, source in sorted(hub.catalog.sources.items()):
        by_department.setdefault(source.department, []).append(name)
    with hub.sessions() as session:
        loaded = set(
            session.scalars(
                sa.select(IngestRun.source)
                .where(IngestRun.status == "success", IngestRun.rows_loaded > 0)
                .distinct()
            )
        )
    return [
        DepartmentStatus(
            code=d.code,
            name_zh=d.name_zh,
            short_zh=d.short_zh,
            name_en=d.name_en,
            batch=d.batch,
            deadline=d.deadline,
            onboarded=d.onboarded,
            sources=by_department.get(d.code, []),
            loaded=any(s in loaded for s in by_department.get(d.code, [])),
        )
        for d in sorted(hub.catalog.departments.values(), key=lambda d: (d.batch, d.code))
    ]


@dataclass(frozen=True)
class RunPoint:
    """One finished ingest run of a source: a point of its quarantine-rate trend."""

    run_id: int
    started_at: dt.datetime
    status: str
    rows_in: int
    rows_loaded: int
    rows_quarantined: int

    @property
    def quarantine_rate(self) -> float | None:
        """Quarantined rows over rows read (None when the run read nothing)."""
        return self.rows_quarantined / self.rows_in if self.rows_in else None


def run_trends(hub: Hub, *, last: int = 30) -> dict[str, list[RunPoint]]:
    """The last ``last`` finished ingest runs of every catalog source, oldest first."""
    out: dict[str, list[RunPoint]] = {}
    runs = IngestRun
    with hub.sessions() as session:
        for name in sorted(hub.catalog.sources):
            rows = session.execute(
                sa.select(
                    runs.id,
                    runs.started_at,
                    runs.status,
                    runs.rows_in,
                    runs.rows_loaded,
                    runs.rows_quarantined,
                )
                .where(runs.source == name, runs.status != "running")
                .order_by(runs.id.desc())
                .limit(last)
            ).all()
            out[name] = [
                RunPoint(
                    run_id=r.id,
                    started_at=_utc(r.started_at) or r.started_at,
                    status=r.status,
                    rows_in=r.rows_in or 0,
                    rows_loaded=r.rows_loaded or 0,
                    rows_quarantined=r.rows_quarantined or 0,
                )
                for r in reversed(rows)
            ]
    return out


# Audit actions that count as one use of the exchange by a department's consumer.
USE_ACTIONS: tuple[str, ...] = ("lookup", "material_check")
# Exchange use is counted per calendar day in China (UTC+8), the day a counter works in.
_CHINA = dt.timezone(dt.timedelta(hours=8))


@dataclass(frozen=True)
class DailyUse:
    """Successful lookups and material checks of one department's consumers on one day."""

    day: dt.date
    department: str
    lookups: int
    material_checks: int


@dataclass(frozen=True)
class ItemSaving:
    """Certificates not asked for (免提交) in one service item's material checks."""

    service_item: str
    checks: int  # successful material checks
    certificates_not_asked: int  # materials covered by a license, summed over the checks
    by_material: dict[str, int]  # material code -> times covered


@dataclass(frozen=True)
class ExchangeUse:
    """Exchange use over the last ``days`` China days up to ``as_of``."""

    as_of: dt.datetime
    days: int
    since: dt.date
    daily: list[DailyUse]
    savings: list[ItemSaving]


def exchange_use(hub: Hub, *, now: dt.datetime, days: int = 14) -> ExchangeUse:
    """Daily use per department and certificates not asked for per service item.

    Counted from the audit log's successful ``lookup`` and ``material_check`` rows; a material
    check's row lists the materials it covered (``detail.covered``). Aggregates only: no holder
    key leaves this function.
    """
    today = now.astimezone(_CHINA).date()
    since = today - dt.timedelta(days=days - 1)
    start = dt.datetime.combine(since, dt.time(), tzinfo=_CHINA).astimezone(dt.UTC)
    counts: dict[tuple[dt.date, str, str], int] = {}
    checks: dict[str, int] = {}
    covered: dict[str, dict[str, int]] = {}
    query = (
        sa.select(
            AuditEntry.at,
            AuditEntry.action,
            AuditEntry.service_item,
            AuditEntry.detail,
            Consumer.department,
        )
        .outerjoin(Consumer, Consumer.name == AuditEntry.consumer)
        .where(
            AuditEntry.action.in_(USE_ACTIONS),
            AuditEntry.result == "ok",
            AuditEntry.at >= start,
        )
    )
    with hub.sessions() as session:
        for row in session.execute(query.execution_options(yield_per=5000)):
            at = _utc(row.at) or row.at
            day = at.astimezone(_CHINA).date()
            if day > today:
                continue  # the hub's clock is behind the row (a moved test clock)
            department = row.department or "unknown"
            key = (day, department, row.action)
            counts[key] = counts.get(key, 0) + 1
            if row.action == "material_check" and row.service_item:
                item = row.service_item
                checks[item] = checks.get(item, 0) + 1
                materials = covered.setdefault(item, {})
                for code in (row.detail or {}).get("covered", []):
                    materials[code] = materials.get(code, 0) + 1
    pairs = sorted({(day, dep) for day, dep, _action in counts})
    daily = [
        DailyUse(
            day=day,
            department=dep,
            lookups=counts.get((day, dep, "lookup"), 0),
            material_checks=counts.get((day, dep, "material_check"), 0),
        )
        for day, dep in pairs
    ]
    savings = [
        ItemSaving(
            service_item=code,
            checks=checks.get(code, 0),
            certificates_not_asked=sum(covered.get(code, {}).values()),
            by_material=dict(sorted(covered.get(code, {}).items())),
        )
        for code in sorted(hub.catalog.service_items)
    ]
    return ExchangeUse(as_of=now, days=days, since=since, daily=daily, savings=savings)
