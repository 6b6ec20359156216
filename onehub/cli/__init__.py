"""The ``onehub`` command. Each area's commands live in their own module here."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from onehub.cli import (
    audit,
    consumers,
    keys,
    licenses,
    pipelines,
    quality,
    quarantine,
    setup,
    sources,
    supervision,
    verify,
)

app = typer.Typer(
    help="OneHub: data-sharing exchange and e-license hub (一门式一网式).", no_args_is_help=True
)


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at INFO")] = False,
) -> None:
    from onehub.redaction import configure_logging

    configure_logging(logging.INFO if verbose else logging.WARNING)


for _command in (
    setup.init,
    setup.sample,
    setup.demo,
    setup.serve,
    pipelines.ingest,
    pipelines.issue,
):
    app.command()(_command)
app.command("verify")(verify.verify)
app.add_typer(pipelines.app, name="pipelines")
app.add_typer(sources.app, name="sources")
app.add_typer(consumers.app, name="consumers")
app.add_typer(keys.app, name="keys")
app.add_typer(audit.app, name="audit")
app.add_typer(licenses.app, name="licenses")
app.add_typer(quarantine.app, name="quarantine")
app.add_typer(quality.app, name="quality")
app.add_typer(supervision.app, name="supervision")
