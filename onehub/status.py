"""Per-source status: the latest ingest run, the state committed in the lake, the lag behind.

The watermark shown is the one committed with the data (the lake commit's state), not the run
record's copy, so it is what the next run starts from. The lag asks the department's system
itself (connector ``backlog``): for SQL the newest watermark there minus the committed one and
the rows after it; for file drops the complete files not yet read; a REST API cannot tell.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa

from catalog_schemas.errors import OneHubError
from catalog_schemas.model import FileConnector, Source
from connectors import open_connector
from exchange.hub import Hub
from exchange.lake import LakeTable
from exchange.model import IngestRun

logger = logging.getLogger(__name__)


def watermark_text(source: Source, state: dict[str, Any] | None) -> str | None:
    """The committed position for people: the watermark, or how many files were read."""
    if not state:
        return None
    if isinstance(source.connector, FileConnector):
        done = len(state.get("done") or [])
        current = state.get("current")
        text = f"{done} file{'' if done == 1 else 's'} read"
        if current:
            text += f", {current.get('rows', 0)} rows into {current.get('name')}"
        return text
    mark = state.get("watermark")
    return None if mark is None else str(mark)


def sources_status(hub: Hub, *, lag: bool = True) -> list[dict[str, Any]]:
    """One row per catalog source: its latest run and counts, committed watermark and lag."""
    latest = (
        sa.select(IngestRun.source, sa.func.max(IngestRun.id).label("id"))
        .group_by(IngestRun.source)
        .subquery()
    )
    with hub.sessions() as session:
        runs = {
            r.source: r
            for r in session.scalars(sa.select(IngestRun).join(latest, IngestRun.id == latest.c.id))
        }
    rows = []
    for name in sorted(hub.catalog.sources):
        source = hub.catalog.source(name)
        run = runs.get(name)
        lake = LakeTable(hub.lake_uri, hub.catalog.license_type(source.license_type))
        state = lake.committed_state(name)
        row: dict[str, Any] = {
            "source": name,
            "status": run.status if run else "never run",
            "started_at": run.started_at.isoformat(timespec="seconds") if run else None,
            "finished_at": run.finished_at.isoformat(timespec="seconds")
            if run and run.finished_at
            else None,
            "rows_in": run.rows_in if run else 0,
            "rows_loaded": run.rows_loaded if run else 0,
            "rows_quarantined": run.rows_quarantined if run else 0,
            "batches": run.batches if run else 0,
            "state": state,
            "watermark": watermark_text(source, state),
            "source_watermark": None,
            "lag": None,
            "waiting": None,
            "waiting_unit": None,
        }
        if lag:
            row.update(_lag(hub, source, state))
        rows.append(row)
    return rows


def _lag(hub: Hub, source: Source, state: dict[str, Any] | None) -> dict[str, Any]:
    try:
        location = hub.resolve_connection(source.connector.connection)
        backlog = open_connector(source, location=location).backlog(state)
    except OneHubError as exc:
        # The status must still show the other sources: report this one as unknown.
        logger.warning("source %s: cannot ask the source for its lag: %s", source.name, exc)
        return {"lag": f"unknown ({exc.code})"}
    return {
        "source_watermark": None
        if backlog.source_watermark is None
        else str(backlog.source_watermark),
        "lag": backlog.lag,
        "waiting": backlog.waiting,
        "waiting_unit": backlog.unit,
    }
