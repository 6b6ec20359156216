"""Department sources: `onehub sources status`, `onehub sources ingest` (with a progress bar)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from catalog_schemas.errors import OneHubError
from onehub.cli.console import build_hub, console, err, fail

app = typer.Typer(help="Department sources.", no_args_is_help=True)


def print_status(*, lag: bool = True, as_json: bool = False) -> None:
    """Print one row per source (``lag`` asks each department's system how far behind we are)."""
    from onehub.status import sources_status

    hub = build_hub()
    rows = sources_status(hub, lag=lag)
    if as_json:
        console.print_json(json.dumps(rows, default=str))
        return
    table = Table(
        "source",
        "last run",
        "status",
        "watermark",
        "rows in",
        "loaded",
        "quarantined",
        "lag",
        "waiting",
        title="sources",
    )
    for row in rows:
        waiting = "-" if row["waiting"] is None else f"{row['waiting']} {row['waiting_unit']}"
        table.add_row(
            row["source"],
            row["finished_at"] or row["started_at"] or "-",
            row["status"],
            row["watermark"] or "-",
            str(row["rows_in"]),
            str(row["rows_loaded"]),
            str(row["rows_quarantined"]),
            row["lag"] or "-",
            waiting,
        )
    console.print(table)


@app.command("status")
def sources_status_cmd(
    no_lag: Annotated[
        bool, typer.Option("--no-lag", help="Do not ask the departments' systems for the lag")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Per source: last run, watermark, rows in / loaded / quarantined, lag behind the source."""
    print_status(lag=not no_lag, as_json=as_json)


def ingest_with_progress(hub: Any, source: str) -> Any:
    """Run ``exchange.pipeline.ingest_source`` with a rich progress bar (rows, rows/s) on stderr."""
    from exchange.pipeline import ingest_source

    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f} rows"),
        TextColumn("{task.fields[rate]:,.0f} rows/s"),
        TimeElapsedColumn(),
    )
    # The total is unknown until the connector has read everything: the bar pulses meanwhile.
    with Progress(*columns, console=err, transient=False) as progress:
        task = progress.add_task(source, total=None, rate=0.0)

        def report(rows: int, seconds: float) -> None:
            progress.update(task, completed=rows, rate=rows / seconds if seconds else 0.0)

        result = ingest_source(hub, source, progress=report)
        progress.update(task, total=max(result.rows_in, 1), completed=result.rows_in)
    return result


@app.command("ingest")
def sources_ingest(source: str) -> None:
    """Ingest one source without Airflow, showing progress (rows, rows/s)."""
    from onehub.database import create_schema

    hub = build_hub()
    create_schema(hub.engine)
    try:
        report = ingest_with_progress(hub, source)
    except OneHubError as exc:
        fail(exc)
    console.print_json(json.dumps(report.as_dict()))
