"""Signing keys: export (and, later, rotate and retire)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from onehub.cli.console import build_hub, console

app = typer.Typer(help="Signing keys.", no_args_is_help=True)


@app.command("export")
def keys_export(
    fmt: Annotated[str, typer.Option("--format", help="jwks or did")] = "did",
) -> None:
    """Print the hub's public keys as a DID document or a JWKS."""
    from onehub.database import public_keys_document

    hub = build_hub()
    console.print_json(json.dumps(public_keys_document(hub, fmt)))
