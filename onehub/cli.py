"""The ``onehub`` command: set-up, sample systems, pipelines, consumers, verification, serving."""

from __future__ import annotations

import json
import logging
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from catalog_schemas.errors import OneHubError

app = typer.Typer(
    help="OneHub: data-sharing exchange and e-license hub (一门式一网式).", no_args_is_help=True
)
pipelines_app = typer.Typer(help="Run the Airflow pipelines.", no_args_is_help=True)
consumers_app = typer.Typer(help="Registered consumers of the exchange API.", no_args_is_help=True)
sources_app = typer.Typer(help="Department sources.", no_args_is_help=True)
keys_app = typer.Typer(help="Signing keys.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
app.add_typer(pipelines_app, name="pipelines")
app.add_typer(consumers_app, name="consumers")
app.add_typer(sources_app, name="sources")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")

console = Console()
err = Console(stderr=True)


def _fail(exc: OneHubError) -> None:
    err.print(f"[bold red]error[/] [{exc.code}] {exc.message}")
    raise typer.Exit(code=1)


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at INFO")] = False,
) -> None:
    from onehub.redaction import configure_logging

    configure_logging(logging.INFO if verbose else logging.WARNING)


def _hub(create_secrets: bool = False) -> Any:
    from onehub.settings import Settings, build_hub

    return build_hub(Settings(), create_secrets=create_secrets)


@app.command()
def init() -> None:
    """Create the data directory, the hub's secrets, the hub database and a signing key."""
    from onehub.database import create_schema, signer_for
    from onehub.settings import Settings

    settings = Settings()
    try:
        hub = _hub(create_secrets=True)
        create_schema(hub.engine)
        signer = signer_for(hub)
    except OneHubError as exc:
        _fail(exc)
    console.print(f"data directory  {settings.resolved_data_dir}")
    console.print(f"hub database    {settings.hub_db_url}")
    console.print(f"lake            {settings.resolved_lake_uri}")
    console.print(f"signing key     {signer.verification_method}")


@app.command()
def sample(
    people: Annotated[int, typer.Option(help="People in the sample population")] = 1000,
    companies: Annotated[int, typer.Option(help="Companies in the sample population")] = 200,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same systems)")] = 2016,
    dirty_rate: Annotated[float, typer.Option(help="Share of rows with one defect")] = 0.03,
    now: Annotated[
        str | None,
        typer.Option(help="The systems' 'today' (ISO date); default today, so validity is current"),
    ] = None,
) -> None:
    """Build the sample department systems (SQLite databases and CSV drops) outside the hub."""
    import datetime as dt
    import shutil

    from onehub.settings import Settings
    from sample_systems import generate

    settings = Settings()
    out = settings.departments_dir.resolve()
    if out.exists():
        shutil.rmtree(out)
    day = dt.date.fromisoformat(now) if now else dt.date.today()
    manifest = generate(
        out_dir=out,
        seed=seed,
        people=people,
        companies=companies,
        dirty_rate=dirty_rate,
        now=dt.datetime.combine(day, dt.time(9, 0)),
    )
    table = Table(
        "source",
        "rows",
        "expected loaded",
        "expected quarantined",
        title=f"sample systems in {out}",
    )
    for name, src in sorted(manifest.sources.items()):
        table.add_row(name, str(src.rows), str(src.expected_loaded), str(src.expected_quarantined))
    console.print(table)


@pipelines_app.command("run")
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
        _fail(exc)
    for result in results:
        console.print(f"[green]✔[/] {result.dag_id}: {result.state}")
    _print_sources_status()


def _print_sources_status() -> None:
    from onehub.status import sources_status

    hub = _hub()
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


@sources_app.command("status")
def sources_status_cmd() -> None:
    """Per source: last run, status, and rows in / loaded / quarantined."""
    _print_sources_status()


@app.command()
def ingest(source: str) -> None:
    """Ingest one source directly, without Airflow (handy while writing a source YAML)."""
    from exchange.pipeline import ingest_source
    from onehub.database import create_schema

    hub = _hub()
    create_schema(hub.engine)
    try:
        report = ingest_source(hub, source)
    except OneHubError as exc:
        _fail(exc)
    console.print_json(json.dumps(report.as_dict()))


@app.command()
def issue() -> None:
    """Issue licenses from the lake's change feed directly, without Airflow."""
    from exchange.pipeline import issue_licenses
    from onehub.database import create_schema, signer_for

    hub = _hub()
    create_schema(hub.engine)
    try:
        report = issue_licenses(hub, signer_for(hub))
    except OneHubError as exc:
        _fail(exc)
    console.print_json(json.dumps(report.as_dict()))


@consumers_app.command("add")
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

    hub = _hub()
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
        _fail(exc)
    console.print(f"consumer {consumer.name} ({consumer.kind}, {consumer.department})")
    console.print(f"API key (shown once): [bold]{key}[/]")


@consumers_app.command("list")
def consumers_list() -> None:
    """List consumers (keys are never shown)."""
    from exchange.consumer import list_consumers

    hub = _hub()
    table = Table("name", "kind", "department", "key id", "disabled", "created")
    with hub.sessions() as session:
        for c in list_consumers(session=session):
            table.add_row(
                c.name, c.kind, c.department, c.key_id, str(c.disabled), c.created_at.isoformat()
            )
    console.print(table)


@app.command()
def verify(
    file: Annotated[
        Path, typer.Argument(help="A credential, a list of them, or a lookup response")
    ],
    keys: Annotated[
        Path | None, typer.Option(help="JWKS or DID document to trust instead of the local hub")
    ] = None,
) -> None:
    """Verify e-licenses offline: signature, validity period and (with the local hub) status."""
    from onehub.verification import verify_document

    try:
        results = verify_document(file, keys_file=keys)
    except OneHubError as exc:
        _fail(exc)
    failed = 0
    for result in results:
        if result.ok:
            console.print(f"[green]✔ valid[/]   {result.credential_id}  {result.detail}")
        else:
            failed += 1
            console.print(f"[red]✘ {result.code}[/]  {result.credential_id}  {result.detail}")
    if failed or not results:
        raise typer.Exit(code=1)


@keys_app.command("export")
def keys_export(
    fmt: Annotated[str, typer.Option("--format", help="jwks or did")] = "did",
) -> None:
    """Print the hub's public keys as a DID document or a JWKS."""
    from onehub.database import public_keys_document

    hub = _hub()
    console.print_json(json.dumps(public_keys_document(hub, fmt)))


@audit_app.command("verify")
def audit_verify() -> None:
    """Walk the audit log's hash chain; name the first broken row."""
    from exchange.audit import verify_chain

    hub = _hub()
    with hub.sessions() as session:
        broken = verify_chain(session=session)
    if broken is None:
        console.print("[green]audit chain intact[/]")
        return
    err.print(f"[bold red]audit chain broken at row {broken}[/]")
    raise typer.Exit(code=1)


@app.command()
def demo(
    department: Annotated[str, typer.Option(help="Department of the demo counter")] = "dps",
) -> None:
    """Register a fresh demo counter and print a ready-to-paste lookup for a sample holder."""
    import secrets

    from exchange.consumer import register
    from onehub.database import create_schema
    from onehub.settings import Settings

    settings = Settings()
    hub = _hub()
    create_schema(hub.engine)
    from sample_systems.manifest import Manifest

    departments = settings.departments_dir.resolve()
    if not (departments / "manifest.json").is_file():
        err.print(f"no sample manifest in {departments}; run `onehub sample` first")
        raise typer.Exit(code=1)
    holder = Manifest.load(departments).demo_holders.people[0].resident_id
    with hub.sessions.begin() as session:
        _consumer, key = register(
            session=session,
            catalog=hub.catalog,
            name=f"demo-counter-{secrets.token_hex(3)}",
            kind="counter",
            department=department,
            now=hub.now(),
        )
    body = json.dumps(
        {
            "id_number": holder,
            "purpose": "办理人才引进落户 (talent household registration)",
            "service_item": "talent_household_registration",
        },
        ensure_ascii=False,
    )
    url = f"http://{settings.api_host}:{settings.api_port}/v1/lookups"
    console.print(
        "\n[bold]Example one-number lookup[/] (paste into another terminal once the API is up):\n"
    )
    sys.stdout.write(
        f"curl -s -X POST {url} -H 'Authorization: Bearer {key}' "
        f"-H 'Content-Type: application/json' -d {shlex.quote(body)} > lookup.json\n"
        ".venv/bin/onehub verify lookup.json\n\n"
    )
    sys.stdout.flush()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """Serve the exchange API with uvicorn."""
    import uvicorn

    from onehub.settings import Settings

    settings = Settings()
    uvicorn.run(
        "onehub.asgi:make_app",
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers,
        log_level="info",
    )
