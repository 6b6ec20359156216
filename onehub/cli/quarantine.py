"""Quarantined rows: list, show, export, replay; and held batches."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from catalog_schemas.errors import OneHubError
from onehub.cli.console import build_hub, console, err, fail

app = typer.Typer(help="Quarantined rows: list, show, export, replay.", no_args_is_help=True)

_STATUSES = ("open", "resolved", "all")


def _status(value: str) -> str | None:
    if value not in _STATUSES:
        raise typer.BadParameter(f"use one of {', '.join(_STATUSES)}")
    return None if value == "all" else value


@app.command("list")
def quarantine_list(
    source: Annotated[str | None, typer.Option("--source", "-s", help="Only this source")] = None,
    status: Annotated[str, typer.Option(help="open, resolved or all")] = "open",
    limit: Annotated[int, typer.Option(help="At most this many rows, newest first")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
) -> None:
    """List quarantined rows with their reasons (no values)."""
    from quality.quarantine import list_rows

    hub = build_hub()
    with hub.sessions() as session:
        rows = [
            {
                "id": r.id,
                "source": r.source,
                "batch_seq": r.batch_seq,
                "row_ref": r.row_ref,
                "reasons": r.reasons,
                "status": r.status,
                "quarantined_at": r.created_at.isoformat(timespec="seconds"),
            }
            for r in list_rows(session=session, source=source, status=_status(status), limit=limit)
        ]
    if as_json:
        console.print_json(json.dumps(rows, ensure_ascii=False))
        return
    table = Table("id", "source", "batch", "row ref", "reasons", "status", "quarantined")
    for row in rows:
        table.add_row(
            str(row["id"]),
            str(row["source"]),
            str(row["batch_seq"]),
            str(row["row_ref"]),
            "; ".join(row["reasons"]),  # type: ignore[arg-type]
            str(row["status"]),
            str(row["quarantined_at"]),
        )
    console.print(table)


@app.command("show")
def quarantine_show(row_id: Annotated[int, typer.Argument(help="Quarantined row id")]) -> None:
    """Show one quarantined row: reasons, values (ID numbers masked), replay history."""
    from quality.quarantine import get_row, masked_row

    hub = build_hub()
    try:
        with hub.sessions() as session:
            r = get_row(session=session, row_id=row_id)
            info = {
                "id": r.id,
                "source": r.source,
                "license_type": r.license_type,
                "batch_seq": r.batch_seq,
                "row_ref": r.row_ref,
                "reasons": r.reasons,
                "status": r.status,
                "quarantined_at": r.created_at.isoformat(),
                "resolved_by": r.resolved_by,
                "resolved_at": r.resolved_at.isoformat() if r.resolved_at else None,
                "replays": r.replays,
                "last_replay_reasons": r.last_replay_reasons,
                "values": masked_row(r.row_json),
            }
    except OneHubError as exc:
        fail(exc)
    console.print_json(json.dumps(info, ensure_ascii=False))


@app.command("export")
def quarantine_export(
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV file to create")],
    source: Annotated[
        str | None, typer.Option("--source", "-s", help="Source whose rows to export")
    ] = None,
    status: Annotated[str, typer.Option(help="open, resolved or all")] = "open",
    row_id: Annotated[
        list[int] | None, typer.Option("--id", help="Only these row ids (repeatable)")
    ] = None,
    held: Annotated[
        int | None, typer.Option("--held", help="Export a held batch's rows instead")
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite the file if it exists")] = False,
) -> None:
    """Export quarantined rows as CSV for the department to fix, ID NUMBERS DECRYPTED.

    This is an authorised engineer's action: the file holds plaintext ID numbers. It is created
    readable by you only (mode 0600); hand it to the department through an approved channel and
    delete it once the corrected file is replayed. Keep the first column (quarantine_id) and the
    source column; fix the values, then `onehub quarantine replay FILE`.
    """
    from exchange.replay import export_held, export_quarantine

    hub = build_hub()
    try:
        if held is not None:
            count = export_held(hub, output, held_id=held, overwrite=force)
        else:
            if source is None:
                raise typer.BadParameter("give --source (or --held)")
            count = export_quarantine(
                hub,
                output,
                source=source,
                status=_status(status),
                row_ids=row_id or (),
                overwrite=force,
            )
    except OneHubError as exc:
        fail(exc)
    err.print(f"[yellow]{output} holds decrypted ID numbers (mode 0600); delete it after use[/]")
    console.print(f"exported {count} rows to {output}")


@app.command("replay")
def quarantine_replay(
    args: Annotated[
        list[str] | None,
        typer.Argument(help="A corrected export (CSV), or FIELD=VALUE overrides for one row"),
    ] = None,
    row_id: Annotated[int | None, typer.Option("--id", help="Replay this row")] = None,
    source: Annotated[str | None, typer.Option("--source", "-s", help="With --row-ref")] = None,
    row_ref: Annotated[
        str | None, typer.Option("--row-ref", help="Replay the open row with this ref")
    ] = None,
    encoding: Annotated[
        str | None, typer.Option(help="File encoding (default: UTF-8, else GB18030)")
    ] = None,
) -> None:
    """Replay fixed rows through the same gate; good rows go to the lake and are resolved.

    `replay FILE` replays every row of a corrected export. `replay --id N FIELD=VALUE ...` (or
    `--source S --row-ref R`) replays one quarantined row with some fields changed; values on a
    command line stay in your shell history, so prefer a file for ID numbers. Licenses for the
    replayed rows are issued by the next issuance run (`onehub issue`).
    """
    from exchange.replay import ReplayError, replay_file, replay_one

    items = list(args or [])
    hub = build_hub()
    try:
        if row_id is not None or row_ref is not None:
            overrides: dict[str, str | None] = {}
            for item in items:
                name, sep, value = item.partition("=")
                if not sep or not name:
                    raise ReplayError(f"{item!r} is not FIELD=VALUE")
                overrides[name.strip()] = value if value.strip() else None
            if row_ref is not None and source is None:
                raise ReplayError("--row-ref needs --source")
            reports = [
                replay_one(hub, row_id=row_id, source=source, row_ref=row_ref, overrides=overrides)
            ]
        else:
            if len(items) != 1:
                raise ReplayError("give one file, or --id/--row-ref with FIELD=VALUE overrides")
            reports = replay_file(hub, Path(items[0]), encoding=encoding)
    except OneHubError as exc:
        fail(exc)
    failed = False
    for report in reports:
        console.print_json(json.dumps(report.as_dict(), ensure_ascii=False))
        failed = failed or bool(report.failed)
    if failed:
        err.print("[yellow]some rows still fail; they stay open with the new reasons[/]")
        raise typer.Exit(code=2)


@app.command("held")
def quarantine_held(
    held_id: Annotated[int | None, typer.Argument(help="Show this held batch")] = None,
    source: Annotated[str | None, typer.Option("--source", "-s", help="Only this source")] = None,
    limit: Annotated[int, typer.Option(help="At most this many batches")] = 50,
) -> None:
    """List batches held above their threshold, or show one (ID numbers masked)."""
    from quality.quarantine import get_held, list_held, masked_row

    hub = build_hub()
    try:
        with hub.sessions() as session:
            if held_id is None:
                table = Table(
                    "id",
                    "source",
                    "batch",
                    "rows in",
                    "rejected",
                    "threshold",
                    "attempts",
                    "held at",
                )
                for h in list_held(session=session, source=source, limit=limit):
                    table.add_row(
                        str(h.id),
                        h.source,
                        str(h.batch_seq),
                        str(h.rows_in),
                        str(h.rows_rejected),
                        f"{h.threshold:.1%}",
                        str(h.attempts),
                        h.created_at.isoformat(timespec="seconds"),
                    )
                console.print(table)
                return
            held, rows = get_held(session=session, held_id=held_id)
            info = {
                "id": held.id,
                "source": held.source,
                "license_type": held.license_type,
                "batch_seq": held.batch_seq,
                "rows_in": held.rows_in,
                "rows_rejected": held.rows_rejected,
                "rows_counted": held.rows_counted,
                "threshold": held.threshold,
                "attempts": held.attempts,
                "quality_run": held.quality_run_id,
                "held_at": held.created_at.isoformat(),
                "last_seen_at": held.last_seen_at.isoformat(),
                "reasons": held.reasons,
                "rows": [
                    {"row_ref": r.row_ref, "reasons": r.reasons, "values": masked_row(r.row_json)}
                    for r in rows
                ],
            }
    except OneHubError as exc:
        fail(exc)
    console.print_json(json.dumps(info, ensure_ascii=False))
