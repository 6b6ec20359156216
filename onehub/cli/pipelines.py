"""Running pipelines: through Airflow (`pipelines run`) or directly (`ingest`, `issue`)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from catalog_schemas.errors import OneHubError
from onehub.cli.console import build_hub, console, fail

app = typer.Typer(help="Run the Airflow pipelines.", no_args_is_help=True)


@app.command("run")
def pipelines_run(
    source: Annotated[
        list[str] | None, typer.Option("--source", "-s", help="Only these sources")
    ] = None,
) -> None:
    """Run the ingest DAGs and then issue_licenses through Airflow (dag.test(), no scheduler)."""
    from onehub.orchestrator import run_all
    from onehub.settings import Settings

    settings = Settings()
    try:
        with console.status("running pipelines through Airflow…"):
            results = run_all(settings, sources=source)
    except OneHubError as exc:
        fail(exc)
    for result in results:
        console.print(f"[green]✔[/] {result.dag_id}: {result.state}")
    from onehub.cli.sources import print_status

    print_status()


def ingest(source: str) -> None:
    """Ingest one source directly, without Airflow (handy while writing a source YAML)."""
    from exchange.pipeline import ingest_source
    from onehub.database import create_schema

    hub = build_hub()
    create_schema(hub.engine)
    try:
        report = ingest_source(hub, source)
    except OneHubError as exc:
        fail(exc)
    console.print_json(json.dumps(report.as_dict()))


def issue() -> None:
    """Issue licenses from the lake's change feed directly, without Airflow."""
    from exchange.pipeline import issue_licenses
    from onehub.database import create_schema, signer_for

    hub = build_hub()
    create_schema(hub.engine)
    try:
        report = issue_licenses(hub, signer_for(hub))
    except OneHubError as exc:
        fail(exc)
    console.print_json(json.dumps(report.as_dict()))
