"""Registered consumers of the exchange API."""

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
            )
    except OneHubError as exc:
        fail(exc)
    console.print(f"consumer {consumer.name} ({consumer.kind}, {consumer.department})")
    console.print(f"API key (shown once): [bold]{key}[/]")


@app.command("list")
def consumers_list() -> None:
    """List consumers (keys are never shown)."""
    from exchange.consumer import list_consumers

    hub = build_hub()
    table = Table("name", "kind", "department", "key id", "disabled", "created")
    with hub.sessions() as session:
        for c in list_consumers(session=session):
            table.add_row(
                c.name, c.kind, c.department, c.key_id, str(c.disabled), c.created_at.isoformat()
            )
    console.print(table)
