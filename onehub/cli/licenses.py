"""License status: revoke, suspend, reinstate (with a recorded reason), show, status lists."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from catalog_schemas.errors import OneHubError
from onehub.cli.console import build_hub, console, fail

app = typer.Typer(
    help="License status: revoke, suspend, reinstate, show; status lists.", no_args_is_help=True
)

Reason = Annotated[str, typer.Option("--reason", help="Why (recorded in the status history)")]
By = Annotated[
    str | None, typer.Option("--by", help="Who makes the change (default: your user name)")
]


def _change(action: str, license_id: str, reason: str, by: str | None) -> None:
    from license_store.model import NATIONAL_STATUS
    from onehub.database import change_license_status

    hub = build_hub()
    try:
        result = change_license_status(
            hub, license_id=license_id, action=action, reason=reason, actor=by or _user()
        )
    except OneHubError as exc:
        fail(exc)
    change = result.change
    console.print(
        f"{change.license_id}: {change.from_status} → [bold]{change.to_status}[/] "
        f"({NATIONAL_STATUS.get(change.to_status, '')}) by {change.actor} "
        f"at {change.changed_at.isoformat(timespec='seconds')}"
    )
    console.print(
        "status lists published: "
        + ", ".join(f"{p.purpose}/{p.list_id} (#{p.sequence})" for p in result.published)
    )


@app.command("revoke")
def revoke(license_id: str, reason: Reason, by: By = None) -> None:
    """Revoke (撤销) a valid or suspended license, for good."""
    _change("revoke", license_id, reason, by)


@app.command("suspend")
def suspend(license_id: str, reason: Reason, by: By = None) -> None:
    """Suspend (暂扣) a valid license until it is reinstated."""
    _change("suspend", license_id, reason, by)


@app.command("reinstate")
def reinstate(license_id: str, reason: Reason, by: By = None) -> None:
    """Make a suspended license valid (有效) again."""
    _change("reinstate", license_id, reason, by)


@app.command("show")
def show(license_id: str) -> None:
    """Print a license version's status, status-list position and status history."""
    from license_store.model import NATIONAL_STATUS
    from license_store.status_list import position
    from onehub.database import license_status

    hub = build_hub()
    try:
        found, changes = license_status(hub, license_id)
    except OneHubError as exc:
        fail(exc)
    list_id, bit = position(found.status_index)
    console.print(f"{found.license_id}  version {found.version}  record {found.record_key}")
    console.print(
        f"status [bold]{found.status}[/] {NATIONAL_STATUS.get(found.status, '')}; "
        f"issued {found.issued_at.isoformat(timespec='seconds')} with key {found.key_id}; "
        f"status lists {list_id}, bit {bit}"
    )
    table = Table("seq", "when", "from", "to", "by", "why")
    for c in changes:
        table.add_row(
            str(c.seq),
            c.changed_at.isoformat(timespec="seconds"),
            c.from_status or "(issued)",
            c.to_status,
            c.actor,
            c.reason,
        )
    console.print(table)


@app.command("publish")
def publish() -> None:
    """Sign and publish the current revocation and suspension lists now."""
    from onehub.database import publish_lists

    hub = build_hub()
    try:
        published = publish_lists(hub)
    except OneHubError as exc:
        fail(exc)
    for p in published:
        console.print(f"{p.url}  #{p.sequence}  {p.set_bits} set")


@app.command("expire")
def expire() -> None:
    """Run the expiry sweep now (the maintenance DAG runs it daily) and republish the lists."""
    from exchange.maintenance import sweep_expired

    hub = build_hub()
    try:
        report = sweep_expired(hub)
    except OneHubError as exc:
        fail(exc)
    console.print(f"{report.expired} licenses expired; lists: {report.published.lists}")


@app.command("status-list")
def status_list_command(
    purpose: Annotated[str, typer.Argument(help="revocation or suspension")],
    list_id: Annotated[int, typer.Argument(help="List number")] = 0,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead")
    ] = None,
) -> None:
    """Print the published status list credential (what GET /v1/status-lists/... serves)."""
    from onehub.database import status_list_credential

    hub = build_hub()
    try:
        credential = status_list_credential(hub, purpose, list_id)
    except OneHubError as exc:
        fail(exc)
    text = json.dumps(credential, ensure_ascii=False, indent=2)
    if output is None:
        console.print_json(text)
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"wrote {output}")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in this environment (a container without one)
        return "unknown"
