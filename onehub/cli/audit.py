"""The audit log: `onehub audit verify`."""

from __future__ import annotations

import typer

from onehub.cli.console import build_hub, console, err

app = typer.Typer(help="The audit log.", no_args_is_help=True)


@app.command("verify")
def audit_verify() -> None:
    """Walk the audit log's hash chain; name the first broken row (exit 1 if there is one)."""
    import sqlalchemy as sa

    from exchange.audit import verify_chain
    from exchange.model import AuditHead

    hub = build_hub()
    with hub.sessions() as session:
        broken = verify_chain(session=session)
        head = session.scalar(sa.select(AuditHead))
    if broken is None:
        if head is None:
            console.print("[green]audit chain intact[/] (empty)")
        else:
            console.print(
                f"[green]audit chain intact[/]: {head.seq} rows, head hash {head.row_hash}"
            )
        return
    err.print(f"[bold red]audit chain broken at row {broken.seq}[/]: {broken.reason}")
    raise typer.Exit(code=1)
