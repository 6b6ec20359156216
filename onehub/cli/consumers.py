"""Registered consumers of the exchange API: add, list, disable, rotate-key."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from catalog_schemas.errors import OneHubError
from onehub.cli.console import build_hub, console, fail

app = typer.Typer(help="Registered consumers of the exchange API.", no_args_is_help=True)


@app.command("add")
def consumers_add(
    name: str,
    department: Annotated[str, typer.Option(help="Department code, e.g. dps")],
    kind: Annotated[
        str, typer.Option(help="department, counter, online_hall or kiosk")
    ] = "counter",
    may_restrict: Annotated[
        bool,
        typer.Option(
            "--may-restrict",
            help="Let this department hide its accesses from holders until an embargo date",
        ),
    ] = False,
    rate_limit: Annotated[
        str | None,
        typer.Option(help="e.g. '50/second' or '10/second;500/minute' (default: the API's)"),
    ] = None,
) -> None:
    """Register a consumer; its API key is printed once and never stored in plaintext."""
    from exchange.consumer import register
    from onehub.database import create_schema

    hub = build_hub()
    create_schema(hub.engine)
    try:
        with hub.sessions.begin() as session:
            consumer, key = register(
                session=session,
                catalog=hub.catalog,
                name=name,
                kind=kind,  # type: ignore[arg-type]
                department=department,
                now=hub.now(),
                may_restrict=may_restrict,
                rate_limit=rate_limit,
            )
    except OneHubError as exc:
        fail(exc)
    console.print(f"consumer {consumer.name} ({consumer.kind}, {consumer.department})")
    console.print(f"scopes: {' '.join(consumer.scopes)}")
    console.print(f"API key (shown once): [bold]{key}[/]")


@app.command("list")
def consumers_list() -> None:
    """List consumers with their scopes (keys are never shown)."""
    from exchange.consumer import list_consumers

    hub = build_hub()
    table = Table("name", "kind", "department", "key id", "disabled", "rate limit", "scopes")
    with hub.sessions() as session:
        for c in list_consumers(session=session):
            table.add_row(
                c.name,
                c.kind,
                c.department,
                c.key_id,
                "yes" if c.disabled else "no",
                c.rate_limit or "default",
                " ".join(c.scopes or []),
            )
    console.print(table)


@app.command("disable")
def consumers_disable(name: str) -> None:
    """Disable a consumer: its key is refused from its next call on."""
    from exchange.consumer import disable

    hub = build_hub()
    try:
        with hub.sessions.begin() as session:
            consumer = disable(session=session, name=name, now=hub.now())
    except OneHubError as exc:
        fail(exc)
    console.print(f"consumer {consumer.name} disabled")


@app.command("rotate-key")
def consumers_rotate_key(name: str) -> None:
    """Give a consumer a new API key (printed once); the old key stops working at once."""
    from exchange.consumer import rotate_key

    hub = build_hub()
    try:
        with hub.sessions.begin() as session:
            consumer, key = rotate_key(session=session, name=name, now=hub.now())
    except OneHubError as exc:
        fail(exc)
    console.print(f"consumer {consumer.name}: new API key (shown once): [bold]{key}[/]")
