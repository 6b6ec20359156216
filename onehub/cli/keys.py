"""Signing keys: list, rotate, retire, export."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from catalog_schemas.errors import OneHubError
from onehub.cli.console import build_hub, console, fail

app = typer.Typer(help="Signing keys.", no_args_is_help=True)


@app.command("export")
def keys_export(
    fmt: Annotated[str, typer.Option("--format", help="jwks or did")] = "did",
) -> None:
    """Print the hub's public keys as a DID document or a JWKS."""
    from onehub.database import public_keys_document

    hub = build_hub()
    console.print_json(json.dumps(public_keys_document(hub, fmt)))


@app.command("list")
def keys_list() -> None:
    """List the signing keys: active (signs), rotated (still verifies), retired (refused)."""
    from onehub.database import signing_keys

    hub = build_hub()
    try:
        keys = signing_keys(hub)
    except OneHubError as exc:
        fail(exc)
    table = Table("kid", "status", "algorithm", "created", "rotated", "retired")
    for key in keys:
        table.add_row(
            key.kid,
            key.status,
            key.algorithm,
            key.created_at.isoformat(timespec="seconds"),
            key.rotated_at.isoformat(timespec="seconds") if key.rotated_at else "",
            key.retired_at.isoformat(timespec="seconds") if key.retired_at else "",
        )
    console.print(table)


@app.command("rotate")
def keys_rotate() -> None:
    """Make a new active signing key; the previous one keeps verifying until retired."""
    from onehub.database import rotate_key

    hub = build_hub()
    try:
        key = rotate_key(hub)
    except OneHubError as exc:
        fail(exc)
    console.print(f"new active key {key.kid}")


@app.command("retire")
def keys_retire(kid: str) -> None:
    """Retire a rotated-out key: credentials it signed are reported as signed by a retired key.

    A kid is a base64url thumbprint and may start with "-": write `onehub keys retire -- KID`.
    """
    from onehub.database import retire_key

    hub = build_hub()
    try:
        key = retire_key(hub, kid)
    except OneHubError as exc:
        fail(exc)
    console.print(f"retired key {key.kid}")
