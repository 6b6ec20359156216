"""The audit log: `onehub audit verify`."""

from __future__ import annotations

import typer

from onehub.cli.console import build_hub, console, err

app = typer.Typer(help="The audit log.", no_args_is_help=True)


@app.command("verify")
def audit_verify() -> None:
    """Walk the audit log's hash chain; name the first broken row."""
    from exchange.audit import verify_chain

    hub = build_hub()
    with hub.sessions() as session:
        broken = verify_chain(session=session)
    if broken is None:
        console.print("[green]audit chain intact[/]")
        return
    err.print(f"[bold red]audit chain broken at row {broken}[/]")
    raise typer.Exit(code=1)
