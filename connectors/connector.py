"""Open the connector a source declares."""

from __future__ import annotations

from catalog_schemas.model import FileConnector, RestConnector, Source, SqlConnector
from connectors.base import Connector
from connectors.file_drop import FileDropConnector
from connectors.rest import RestSourceConnector
from connectors.sql import SqlSourceConnector


def open_connector(source: Source, *, location: str, min_age_seconds: float = 2.0) -> Connector:
    """The connector for ``source``; ``location`` is a SQLAlchemy URL (sql), a folder (file) or
    the API's base URL (rest).

    ``min_age_seconds`` applies to file drops without ``.done`` markers: how long a file must
    have been left untouched before it counts as complete.
    """
    connector = source.connector
    if isinstance(connector, SqlConnector):
        return SqlSourceConnector(source, location=location)
    if isinstance(connector, FileConnector):
        return FileDropConnector(source, location=location, min_age_seconds=min_age_seconds)
    if isinstance(connector, RestConnector):
        return RestSourceConnector(source, location=location)
    raise AssertionError(f"unhandled connector kind {connector!r}")  # pragma: no cover
