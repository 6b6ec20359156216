"""What an Airflow task calls: build the hub from settings, run one step, return counts.

Return values go to XCom, so they hold counts, versions, ids and paths only — never rows.
This module does not import Airflow: the DAG files hand it what Airflow knows (a connection's
fields, the run's window) as plain values.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from catalog_schemas.errors import FatalError
from catalog_schemas.model import SqlConnector
from exchange.hub import Hub
from exchange.lake import LakeTable
from onehub.dag_defaults import OrchestrationSettings, department_time
from onehub.redaction import configure_logging
from onehub.settings import Settings, build_hub

logger = logging.getLogger(__name__)


class StepUnavailableError(FatalError):
    """A maintenance step whose implementation is not installed in this deployment."""

    code = "step_unavailable"


def _hub(settings: Settings | None = None, *, pipeline: bool = False) -> Hub:
    """The hub from settings, its tables created.

    ``pipeline`` steps (ingest, issuance) need every table and great_expectations; the others
    create only the exchange's and the license store's tables, so that a supervision or upkeep
    task does not spend seconds importing great_expectations (onehub.database imports quality).
    """
    configure_logging()
    # great_expectations logs hundreds of registration lines at INFO when imported under
    # Airflow's logging; they would bury the task log.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    hub = build_hub(settings or Settings())
    if pipeline:
        from onehub.database import create_schema

        create_schema(hub.engine)
    else:
        from exchange.model import metadata as exchange_metadata
        from license_store.model import Base as LicenseBase

        exchange_metadata.create_all(hub.engine)
        LicenseBase.metadata.create_all(hub.engine)
    return hub


def location_for(
    settings: Settings, conn_id: str, airflow_connection: Mapping[str, Any] | None
) -> str:
    """Where a source's connection points: ONEHUB settings, then Airflow's Connection, then the
    sample folder.

    ``airflow_connection`` holds the fields of the Airflow Connection of that id (defined in the
    UI, a secrets backend or ``AIRFLOW_CONN_<ID>``), or None when Airflow has none.
    """
    if conn_id in settings.connections or os.environ.get("ONEHUB_CONN_" + conn_id.upper()):
        return settings.connection(conn_id)
    if airflow_connection is not None:
        from connectors.connection import location_from_airflow

        return location_from_airflow(json.dumps(dict(airflow_connection), default=str))
    return settings.connection(conn_id)


def parse_window_start(value: str | dt.datetime | None) -> dt.datetime | None:
    """A backfill window start as a naive department-clock time (None: no backfill)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise FatalError(
                f"window start {value!r} is not an ISO date or date-time", code="window_invalid"
            ) from None
    return department_time(value)


def backfill_state(state: Mapping[str, Any], window_start: dt.datetime) -> dict[str, Any] | None:
    """The SQL connector state that makes the next read start at ``window_start`` (inclusive).

    The connector reads rows with ``wm > watermark OR (wm = watermark AND pk > pk)``
    (connectors.sql). A watermark one tick before the window start with no primary key selects
    every row from the start on. The value is written the way the state already writes it
    (``T`` or space, a date only), because SQLite compares watermarks as text. None when the
    window starts at or after the committed watermark: nothing earlier to re-read.
    """
    current = state.get("watermark")
    if not isinstance(current, str):
        raise FatalError(
            f"backfill by window needs a date or date-time watermark, not {current!r}",
            code="backfill_unsupported",
        )
    try:
        reached = dt.datetime.fromisoformat(current)
    except ValueError:
        raise FatalError(
            f"backfill by window: cannot read the watermark {current!r} as a date-time",
            code="backfill_unsupported",
        ) from None
    start = window_start
    if reached.tzinfo is not None:
        start = start.replace(tzinfo=reached.tzinfo) if start.tzinfo is None else start
    if start >= reached:
        return None
    if len(current) == 10:  # a DATE watermark
        value = (start.date() - dt.timedelta(days=1)).isoformat()
    else:
        value = (start - dt.timedelta(microseconds=1)).isoformat(
            sep="T" if "T" in current else " ", timespec="microseconds"
        )
    return {**state, "watermark": value, "pk": None}


def rewind_for_backfill(hub: Hub, source_name: str, window_start: dt.datetime) -> bool:
    """Commit a rewound watermark to the lake so the next ingest re-reads from ``window_start``.

    The rewind is an empty lake batch carrying the new state, so it is exactly-once like any
    batch; re-read rows that did not change leave the lake as it was (the merge compares row
    hashes). False when there is nothing to rewind (never loaded, or a window after the
    watermark).
    """
    source = hub.catalog.source(source_name)
    if not isinstance(source.connector, SqlConnector):
        raise FatalError(
            f"source {source_name!r}: a window backfill needs a SQL source; a file drop is "
            "re-read by dropping its files again",
            code="backfill_unsupported",
        )
    lake = LakeTable(hub.lake_uri, hub.catalog.license_type(source.license_type))
    state = lake.committed_state(source.name)
    if state is None or "watermark" not in state:
        return False
    rewound = backfill_state(state, window_start)
    if rewound is None:
        return False
    seq = lake.committed_seq(source.name) + 1
    lake.commit_batch(lake.schema.empty_table(), source=source.name, seq=seq, state=rewound)
    logger.info(
        "source %s: watermark rewound from %s to %s for a backfill",
        source.name,
        state["watermark"],
        rewound["watermark"],
    )
    return True


def run_ingest(
    source_name: str,
    *,
    airflow_connection: Mapping[str, Any] | None = None,
    window_start: str | dt.datetime | None = None,
) -> dict[str, Any]:
    """Ingest one source (from ``window_start`` on, for a backfill); the counts of the run."""
    settings = Settings()
    hub = _hub(settings, pipeline=True)
    from exchange import pipeline

    conn_id = hub.catalog.source(source_name).connector.connection
    location = location_for(settings, conn_id, airflow_connection)
    hub = replace(
        hub, resolve_connection=lambda cid: location if cid == conn_id else settings.connection(cid)
    )
    start = parse_window_start(window_start)
    rewound = rewind_for_backfill(hub, source_name, start) if start is not None else False
    report = pipeline.ingest_source(hub, source_name)
    counts = report.as_dict()
    counts["backfill_from"] = start.isoformat() if rewound and start is not None else None
    check_counts(counts)
    return counts


def check_counts(counts: dict[str, Any]) -> None:
    """Fail loudly unless rows in = rows loaded + rows quarantined."""
    if counts["rows_in"] != counts["rows_loaded"] + counts["rows_quarantined"]:
        raise FatalError(
            f"source {counts['source']}: rows in {counts['rows_in']} "
            f"!= loaded {counts['rows_loaded']} "
            f"+ quarantined {counts['rows_quarantined']}",
            code="rows_lost",
        )
    logger.info(
        "source %s: %d rows in = %d loaded + %d quarantined",
        counts["source"],
        counts["rows_in"],
        counts["rows_loaded"],
        counts["rows_quarantined"],
    )


def run_issuance() -> dict[str, Any]:
    """Issue licenses for everything new in the lake; the counts per license type."""
    hub = _hub(pipeline=True)
    from exchange.issuance import issue_licenses
    from exchange.maintenance import publish_status_lists
    from onehub.database import signer_for

    report = issue_licenses(hub, signer_for(hub))
    # Cancellations reach the published status lists now, not at the next daily maintenance.
    publish_status_lists(hub)
    return report.as_dict()


def run_supervision(sources: list[str] | None = None) -> dict[str, Any]:
    """Evaluate the supervision cards (all sources, or the named); CardRaisedError on new ones."""
    from exchange.supervision import supervise

    hub = _hub()
    result = supervise(hub, now=hub.now(), sources=sources)
    result.raise_for_new_cards()
    return result.counts()


def _summary(result: Any) -> dict[str, Any]:
    """A JSON-safe summary of a maintenance step's result, for XCom."""
    if result is None:
        return {}
    data = result.as_dict() if hasattr(result, "as_dict") else result
    if isinstance(data, list | tuple):
        return {"count": len(data)}
    if not isinstance(data, Mapping):
        return {"result": data if isinstance(data, int | float | str) else str(data)}
    summary: dict[str, Any] = json.loads(json.dumps(dict(data), default=str))
    return summary


def run_expiry_sweep() -> dict[str, Any]:
    """Mark licenses past their validity as expired (exchange.maintenance.sweep_expired)."""
    try:
        from exchange.maintenance import sweep_expired
    except ImportError as exc:  # provided by the license-lifecycle work
        raise StepUnavailableError(
            f"exchange.maintenance.sweep_expired is not installed: {exc}"
        ) from exc
    hub = _hub()
    return _summary(sweep_expired(hub, now=hub.now()))


def run_status_lists() -> dict[str, Any]:
    """Publish the status lists (exchange.maintenance.publish_status_lists)."""
    try:
        from exchange.maintenance import publish_status_lists
    except ImportError as exc:  # provided by the license-lifecycle work
        raise StepUnavailableError(
            f"exchange.maintenance.publish_status_lists is not installed: {exc}"
        ) from exc
    return _summary(publish_status_lists(_hub()))


def lake_upkeep(hub: Hub, *, retention_hours: int) -> dict[str, Any]:
    """Compact every lake table; vacuum those whose change feed issuance has read to the end.

    Vacuum removes the files old versions need, and issuance reads the change feed from its
    cursor on: a table issuance has not caught up with is compacted only, and vacuumed later.
    """
    from license_store.store import get_cursor

    out: dict[str, Any] = {}
    for code, license_type in sorted(hub.catalog.license_types.items()):
        lake = LakeTable(hub.lake_uri, license_type)
        if not lake.exists():
            continue
        compacted = lake.compact()
        with hub.sessions() as session:
            cursor = get_cursor(session=session, name=f"lake:{code}")
        # The compaction's own commit changes no data, so the cursor may sit just below it.
        caught_up = cursor is not None and not lake.changes(after_version=cursor).num_rows
        vacuumed = lake.vacuum(retention_hours) if caught_up else None
        if not caught_up:
            logger.warning(
                "lake %s: issuance is behind (cursor %s); vacuum postponed", code, cursor
            )
        out[code] = {
            "files_compacted": compacted,
            "files_vacuumed": vacuumed,
            "version": lake.version(),
        }
    return out


def run_lake_upkeep() -> dict[str, Any]:
    """Compact and vacuum the lake within the configured retention."""
    return lake_upkeep(_hub(), retention_hours=OrchestrationSettings().lake_retention_hours)


def run_key_reminder() -> dict[str, Any]:
    """KeyRotationDueError when the active signing key is older than the rotation period."""
    from exchange.supervision import key_rotation_reminder, raise_if_key_rotation_due

    hub = _hub()
    reminder = key_rotation_reminder(
        hub, now=hub.now(), max_age_days=OrchestrationSettings().key_rotation_days
    )
    raise_if_key_rotation_due(reminder)
    return reminder.as_dict()
