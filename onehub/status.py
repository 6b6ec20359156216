"""Per-source status from the hub's ingest-run records."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from exchange.hub import Hub
from exchange.model import IngestRun


def sources_status(hub: Hub) -> list[dict[str, Any]]:
    """One row per catalog source: its latest run and counts (or 'never run')."""
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
        run = runs.get(name)
        rows.append(
            {
                "source": name,
                "status": run.status if run else "never run",
                "finished_at": run.finished_at.isoformat(timespec="seconds")
                if run and run.finished_at
                else None,
                "rows_in": run.rows_in if run else 0,
                "rows_loaded": run.rows_loaded if run else 0,
                "rows_quarantined": run.rows_quarantined if run else 0,
                "batches": run.batches if run else 0,
                "state": run.state if run else None,
            }
        )
    return rows
