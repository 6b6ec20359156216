"""Data-quality reports: pass rates per expectation over time, and the runs' Data Docs."""

from __future__ import annotations

import collections
import datetime as dt
import json
from typing import Annotated

import typer
from rich.table import Table

from onehub.cli.console import build_hub, console

app = typer.Typer(help="Data-quality reports.", no_args_is_help=True)

#: Most period columns shown; older periods are folded into the overall column only.
MAX_COLUMNS = 8


def _since(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _cell(total: int, failed: int) -> str:
    if total == 0:
        return "-"
    rate = 100.0 * (1 - failed / total)
    text = f"{rate:.2f}%".replace(".00%", "%")
    return text if failed == 0 else f"{text} ({failed})"


@app.command("report")
def quality_report(
    source: Annotated[str | None, typer.Option("--source", "-s", help="Only this source")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only runs started on or after this date (YYYY-MM-DD)")
    ] = None,
    by: Annotated[str, typer.Option(help="One column per `day` or per `run`")] = "day",
    replays: Annotated[bool, typer.Option(help="Count replay runs too")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables")] = False,
) -> None:
    """Pass rates per expectation over time: the share of rows that passed each check.

    A cell reads `99.5% (12)`: 99.5 % of the rows passed, 12 failed. Mapping checks
    (`bad_date:...`, `unknown_code:...`) are the source mapping's type conversions.
    """
    from quality.report import INGEST, REPLAY, pass_rates

    if by not in ("day", "run"):
        raise typer.BadParameter("use --by day or --by run")
    hub = build_hub()
    with hub.sessions() as session:
        rates = pass_rates(
            session=session,
            source=source,
            since=_since(since),
            kinds=(INGEST, REPLAY) if replays else (INGEST,),
        )
    if as_json:
        console.print_json(
            json.dumps(
                [
                    {
                        "source": r.source,
                        "run": r.run_id,
                        "kind": r.kind,
                        "status": r.status,
                        "started_at": r.started_at.isoformat(),
                        "check": r.reason,
                        "expectation": r.expectation,
                        "rows": r.element_count,
                        "failed": r.unexpected_count,
                        "pass_rate": r.rate,
                    }
                    for r in rates
                ]
            )
        )
        return
    if not rates:
        console.print("no quality runs recorded" + (f" for {source}" if source else ""))
        return
    by_source: dict[str, list[object]] = collections.defaultdict(list)
    for r in rates:
        by_source[r.source].append(r)
    for name in sorted(by_source):
        rows = [r for r in rates if r.source == name]
        periods: list[str] = []
        cells: dict[tuple[str, str], list[int]] = collections.defaultdict(lambda: [0, 0])
        overall: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
        kinds: dict[str, str] = {}
        for r in rows:
            period = r.started_at.date().isoformat() if by == "day" else str(r.run_id)
            if period not in periods:
                periods.append(period)
            for acc in (cells[(r.reason, period)], overall[r.reason]):
                acc[0] += r.element_count
                acc[1] += r.unexpected_count
            kinds[r.reason] = r.expectation
        shown = periods[-MAX_COLUMNS:]
        table = Table(
            "check",
            "kind",
            *(("run " + p) if by == "run" else p for p in shown),
            "overall",
            title=f"{name}: pass rate per check ({len(periods)} {by}s)",
        )
        for reason in sorted(overall, key=lambda k: (kinds[k] == "mapping", k)):
            kind = "mapping" if kinds[reason] == "mapping" else "expectation"
            table.add_row(
                reason,
                kind,
                *(_cell(*cells[(reason, p)]) if (reason, p) in cells else "-" for p in shown),
                _cell(*overall[reason]),
            )
        console.print(table)


@app.command("runs")
def quality_runs(
    source: Annotated[str | None, typer.Option("--source", "-s", help="Only this source")] = None,
    limit: Annotated[int, typer.Option(help="At most this many runs, newest first")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
) -> None:
    """Recent quality runs with their counts and Data Docs page."""
    from quality.report import list_runs

    hub = build_hub()
    with hub.sessions() as session:
        runs = [
            {
                "run": run.id,
                "source": run.source,
                "kind": run.kind,
                "started_at": run.started_at.isoformat(timespec="seconds"),
                "status": run.status,
                "batches": run.batches,
                "rows_in": run.rows_in,
                "rows_rejected": run.rows_rejected,
                "report": run.report_uri,
            }
            for run in list_runs(session=session, source=source, limit=limit)
        ]
    if as_json:
        console.print_json(json.dumps(runs))
        return
    table = Table("run", "source", "kind", "started", "status", "rows in", "rejected", "report")
    for r in runs:
        table.add_row(
            *(str(r[k]) for k in ("run", "source", "kind", "started_at", "status", "rows_in")),
            str(r["rows_rejected"]),
            str(r["report"] or "-"),
        )
    console.print(table)
