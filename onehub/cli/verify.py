"""`onehub verify`: check e-licenses offline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from catalog_schemas.errors import OneHubError
from onehub.cli.console import console, fail


def verify(
    file: Annotated[
        Path, typer.Argument(help="A credential, a list of them, or a lookup response")
    ],
    keys: Annotated[
        Path | None, typer.Option(help="JWKS or DID document to trust instead of the local hub")
    ] = None,
    status_list: Annotated[
        list[Path] | None,
        typer.Option(
            "--status-list",
            help="A status list credential file (repeat for revocation and suspension)",
        ),
    ] = None,
    service_item: Annotated[
        str | None,
        typer.Option(help="The service item an annotated copy (加注件) is presented for"),
    ] = None,
) -> None:
    """Verify e-licenses offline: signature, key, validity period, status lists, store status."""
    from onehub.verification import verify_document

    try:
        results = verify_document(
            file, keys_file=keys, status_list_files=status_list or (), service_item=service_item
        )
    except OneHubError as exc:
        fail(exc)
    failed = 0
    for result in results:
        if result.ok:
            console.print(f"[green]✔ valid[/]   {result.credential_id}  {result.detail}")
        else:
            failed += 1
            console.print(f"[red]✘ {result.code}[/]  {result.credential_id}  {result.detail}")
    if failed or not results:
        raise typer.Exit(code=1)
