"""Department sources: `onehub sources status`."""

from __future__ import annotations

import typer
from rich.table import Table

from onehub.cli.console import build_hub, console

app = typer.Typer(help="Department sources.", no_args_is_help=True)


def print_status() -> None:
    from onehub.status import sources_status

    hub = build_hub()
    table = Table(
        "source",
        "last run",
        "status",
        "rows in",
        "loaded",
        "quarantined",
        "batches",
        title="sources",
    )
    for row in sources_status(hub):
        table.add_row(
            row["source"],
            row["finished_at"] or "-",
            row["status"],
            str(row["rows_in"]),
            str(row["rows_loaded"]),
            str(row["rows_quarantined"]),
            str(row["batches"]),
        )
    console.print(table)


@app.command("status")
def sources_status_cmd() -> None:
    """Per source: last run, status, and rows in / loaded / quarantined."""
    print_status()
