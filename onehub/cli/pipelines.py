"""Running pipelines: through Airflow (`pipelines run`) or directly (`ingest`, `issue`)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from catalog_schemas.errors import OneHubError
from onehub.cli.console import build_hub, console, fail

app = typer.Typer(help="Run the Airflow pipelines.", no_args_is_help=True)


@contextlib.contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Send this process's stdout and stderr (Airflow's task logs included) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


@app.command("run")
def pipelines_run(
    source: Annotated[
        list[str] | None, typer.Option("--source", "-s", help="Only these sources")
    ] = None,
    airflow_output: Annotated[
        bool,
        typer.Option(help="Show Airflow's own output instead of writing it to a log file"),
    ] = False,
) -> None:
    """Run the ingest DAGs and then issue_licenses through Airflow (dag.test(), no scheduler)."""
    from onehub.orchestrator import run_all
    from onehub.settings import Settings

    settings = Settings()
    log = settings.airflow_home / "logs" / "pipelines-run.log"
    if not airflow_output:
        console.print(f"running the pipelines through Airflow; its output goes to {log}")
    redirect = contextlib.nullcontext() if airflow_output else _output_to(log)
    try:
        with redirect:
            results = run_all(settings, sources=source)
    except OneHubError as exc:
        fail(exc)
    for result in results:
        console.print(f"[green]✔[/] {result.dag_id}: {result.state}")
    from onehub.cli.sources import print_status

    print_status()


def ingest(source: str) -> None:
    """Ingest one source directly, without Airflow (handy while writing a source YAML)."""
    from onehub.cli.sources import ingest_with_progress
    from onehub.database import create_schema

    hub = build_hub()
    create_schema(hub.engine)
    try:
        report = ingest_with_progress(hub, source)
    except OneHubError as exc:
        fail(exc)
    console.print_json(json.dumps(report.as_dict()))


def issue() -> None:
    """Issue licenses from the lake's change feed directly, without Airflow."""
    from exchange.issuance import issue_licenses
    from onehub.database import create_schema, signer_for

    hub = build_hub()
    create_schema(hub.engine)
    try:
        report = issue_licenses(hub, signer_for(hub))
    except OneHubError as exc:
        fail(exc)
    console.print_json(json.dumps(report.as_dict()))


@app.command("backfill")
def pipelines_backfill(
    source: Annotated[str, typer.Argument(help="The source to re-read")],
    window_start: Annotated[
        str,
        typer.Option("--from", help="Re-read from this ISO date or date-time (department clock)"),
    ],
) -> None:
    """Re-read a source from a past point through its ingest DAG, then issue what changed.

    The lake's exactly-once merge changes only the rows that differ from what it holds.
    """
    from onehub.orchestrator import run_backfill
    from onehub.settings import Settings

    try:
        with console.status(f"re-reading {source} from {window_start} through Airflow…"):
            results = run_backfill(Settings(), source, window_start)
    except OneHubError as exc:
        fail(exc)
    for result in results:
        console.print(f"[green]✔[/] {result.dag_id}: {result.state}")


@app.command("maintenance")
def pipelines_maintenance() -> None:
    """Run the maintenance DAG now (expiry, status lists, lake upkeep, supervision, key age)."""
    from onehub.orchestrator import run_maintenance
    from onehub.settings import Settings

    try:
        with console.status("running maintenance through Airflow…"):
            result = run_maintenance(Settings())
    except OneHubError as exc:
        fail(exc)
    console.print(f"[green]✔[/] {result.dag_id}: {result.state}")


@app.command("standalone")
def pipelines_standalone(
    port: Annotated[int, typer.Option(help="Port of the Airflow UI on 127.0.0.1")] = 8080,
) -> None:
    """Start Airflow standalone (SQLite) in the background with OneHub's DAGs unpaused."""
    from onehub.orchestrator import start_standalone
    from onehub.settings import Settings

    try:
        with console.status("starting Airflow standalone (about 20 s)…"):
            info = start_standalone(Settings(), port=port)
    except OneHubError as exc:
        fail(exc)
    console.print(f"[green]✔[/] Airflow is up at [bold]{info.url}[/] (pid {info.pid})")
    console.print(f"  login: [bold]{info.username}[/] / [bold]{info.password}[/]")
    console.print(f"  {len(info.dag_ids)} OneHub DAGs unpaused: {', '.join(info.dag_ids)}")
    console.print(f"  log: {info.log}; stop it with `make stop` (onehub pipelines stop)")


@app.command("stop")
def pipelines_stop() -> None:
    """Stop the Airflow standalone started by `onehub pipelines standalone`."""
    from onehub.orchestrator import stop_standalone
    from onehub.settings import Settings

    pid = stop_standalone(Settings())
    console.print(f"stopped Airflow (pid {pid})" if pid else "Airflow standalone is not running")
