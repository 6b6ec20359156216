"""Supervision (效能監督): freshness and quality cards per source.

``onehub supervision`` shows each source's health and the open cards; ``check`` evaluates the
cards and stores them (what the maintenance DAG does daily); ``cards --all`` lists the history.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.table import Table

from catalog_schemas.errors import FatalError, OneHubError
from exchange.supervision import CardView, assess, list_cards, supervise
from onehub.cli.console import build_hub, console, fail

app = typer.Typer(
    help="Supervision (效能监督): freshness and quality cards per source.",
    invoke_without_command=True,
)

_STYLE = {"green": "green", "yellow": "bold yellow", "red": "bold red", "not_started": "dim"}
NowOption = Annotated[
    str | None,
    typer.Option("--now", help="Evaluate as of this ISO date-time (UTC if no offset)"),
]


def _now(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        fail(FatalError(f"--now {value!r} is not an ISO date-time", code="now_invalid"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _when(value: dt.datetime | None) -> str:
    return value.isoformat(timespec="minutes") if value else "-"


def _show(now: dt.datetime | None) -> None:
    hub = build_hub()
    from onehub.database import create_schema

    create_schema(hub.engine)
    at = now or hub.now()
    table = Table(
        "source",
        "department",
        "SLA h",
        "last load",
        "age h",
        "freshness",
        "quality",
        title=f"supervision as of {_when(at)}",
    )
    for h in assess(hub, now=at):
        table.add_row(
            h.source,
            h.department,
            f"{h.sla_hours:g}",
            _when(h.last_load_at),
            f"{h.age_hours:.1f}" if h.age_hours is not None else "-",
            f"[{_STYLE[h.freshness]}]{h.freshness}[/]",
            f"[{_STYLE[h.quality]}]{h.quality}[/]"
            + (f" ({h.rejected_runs} rejected)" if h.rejected_runs else ""),
        )
    console.print(table)
    with hub.sessions() as session:
        cards = list_cards(session=session)
    _print_cards(cards, title="open cards")


def _print_cards(cards: list[CardView], *, title: str) -> None:
    if not cards:
        console.print(f"{title}: none")
        return
    table = Table("#", "source", "kind", "card", "raised", "closed", "reason", title=title)
    for card in cards:
        table.add_row(
            str(card.id),
            card.source,
            card.kind,
            f"[{_STYLE.get(card.color, '')}]{card.color}[/]",
            _when(card.raised_at),
            f"{_when(card.closed_at)} ({card.closed_because})" if card.closed_at else "-",
            card.reason,
        )
    console.print(table)


@app.callback()
def supervision(ctx: typer.Context, now: NowOption = None) -> None:
    """Show every source's freshness and quality, and the open cards."""
    if ctx.invoked_subcommand is None:
        _show(_now(now))


@app.command("check")
def check(
    now: NowOption = None,
    source: Annotated[
        list[str] | None, typer.Option("--source", "-s", help="Only these sources")
    ] = None,
) -> None:
    """Evaluate and store the cards (raise, escalate, clear); exit 1 if a card was raised."""
    from onehub.database import create_schema

    hub = build_hub()
    create_schema(hub.engine)
    try:
        result = supervise(hub, now=_now(now) or hub.now(), sources=source)
    except OneHubError as exc:
        fail(exc)
    for card in result.closed:
        console.print(
            f"[green]closed[/] {card.color} {card.kind} card #{card.id} ({card.closed_because})"
        )
    _print_cards(result.raised, title="raised")
    counts = result.counts()
    console.print(f"open cards: {counts['yellow']} yellow, {counts['red']} red")
    if result.raised:
        raise typer.Exit(code=1)


@app.command("cards")
def cards(
    include_closed: Annotated[
        bool, typer.Option("--all", help="Every card ever raised, closed ones too")
    ] = False,
    source: Annotated[str | None, typer.Option("--source", "-s", help="Only this source")] = None,
) -> None:
    """List the stored cards (open ones by default)."""
    from onehub.database import create_schema

    hub = build_hub()
    create_schema(hub.engine)
    with hub.sessions() as session:
        found = list_cards(session=session, include_closed=include_closed, source=source)
    _print_cards(found, title="cards" if include_closed else "open cards")
