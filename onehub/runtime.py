"""What an Airflow task calls: build the hub from settings, run one pipeline step, return counts.

Return values go to XCom, so they hold counts, versions and ids only — never rows.
"""

from __future__ import annotations

import logging
from typing import Any

from catalog_schemas.errors import FatalError
from exchange import pipeline
from onehub.redaction import configure_logging
from onehub.settings import Settings, build_hub

logger = logging.getLogger(__name__)


def run_ingest(source_name: str) -> dict[str, Any]:
    """Ingest one source; the counts of the run."""
    configure_logging()
    hub = build_hub(Settings())
    from onehub.database import create_schema

    create_schema(hub.engine)
    report = pipeline.ingest_source(hub, source_name)
    counts = report.as_dict()
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
    configure_logging()
    settings = Settings()
    hub = build_hub(settings)
    from onehub.database import create_schema, signer_for

    create_schema(hub.engine)
    report = pipeline.issue_licenses(hub, signer_for(hub))
    return report.as_dict()
