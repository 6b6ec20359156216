"""Top-level set-up commands: init, sample, demo, serve."""

from __future__ import annotations

import json
import shlex
import sys
from typing import Annotated

import typer
from rich.table import Table

from catalog_schemas.errors import OneHubError
from onehub.cli.console import build_hub, console, err, fail


def init() -> None:
    """Create the data directory, the hub's secrets, the hub database and a signing key."""
    from onehub.database import create_schema, signer_for
    from onehub.settings import Settings

    settings = Settings()
    try:
        hub = build_hub(create_secrets=True)
        create_schema(hub.engine)
        signer = signer_for(hub)
    except OneHubError as exc:
        fail(exc)
    console.print(f"data directory  {settings.resolved_data_dir}")
    console.print(f"hub database    {settings.hub_db_url}")
    console.print(f"lake            {settings.resolved_lake_uri}")
    console.print(f"signing key     {signer.verification_method}")


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


def demo(
    department: Annotated[str, typer.Option(help="Department of the demo counter")] = "dps",
) -> None:
    """Register a fresh demo counter and print a ready-to-paste lookup for a sample holder."""
    import secrets

    from exchange.consumer import register
    from onehub.database import create_schema
    from onehub.settings import Settings

    settings = Settings()
    hub = build_hub()
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


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
    rate_limit: Annotated[
        str | None,
        typer.Option(
            help="Default per-consumer rate limit, e.g. '100/second' (ONEHUB_API_RATE_LIMIT)"
        ),
    ] = None,
    access_log: Annotated[bool, typer.Option(help="Log every request line")] = False,
) -> None:
    """Serve the exchange API with uvicorn (ONEHUB_DB_URL=postgresql+psycopg://… in production)."""
    import os
    import shutil
    import tempfile
    from pathlib import Path

    import uvicorn

    from exchange.consumer import check_rate_limit
    from exchange.model import metadata as exchange_metadata
    from license_store.model import metadata as license_metadata
    from onehub.settings import Settings

    settings = Settings()
    if workers < 1:
        err.print("--workers must be at least 1")
        raise typer.Exit(code=1)
    try:
        if rate_limit is not None:
            os.environ["ONEHUB_API_RATE_LIMIT"] = check_rate_limit(rate_limit)
        # The API's tables, if missing (a newer release adds some); the rest is `onehub init`'s.
        # Not onehub.database.create_schema: it imports the quality gate (great_expectations),
        # seconds of start-up that every restart of the API would pay.
        engine = build_hub().engine
        for metadata in (exchange_metadata, license_metadata):
            metadata.create_all(engine)
        engine.dispose()
    except OneHubError as exc:
        fail(exc)
    # Read by each worker (onehub.asgi): its share of the rate limits, and where the workers'
    # Prometheus counters meet so /metrics adds them up.
    os.environ["ONEHUB_API_WORKERS"] = str(workers)
    if workers > 1:
        metrics_dir = Path(tempfile.mkdtemp(prefix="onehub-metrics-"))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    else:
        metrics_dir = None
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    try:
        uvicorn.run(
            "onehub.asgi:make_app",
            factory=True,
            host=host or settings.api_host,
            port=port or settings.api_port,
            workers=workers,
            log_level="info",
            access_log=access_log,
            timeout_graceful_shutdown=15,
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
