"""Connectors: incremental reads of department sources as Arrow batches, and the source mapping."""

from connectors.base import ROW_REF, Backlog, Connector, ReadBatch
from connectors.connector import open_connector
from connectors.file_drop import FileDropConnector, UnreadableFileError
from connectors.mapping import DELETED, ERRORS, apply_mapping, output_schema
from connectors.rest import RestRetriesExhaustedError, RestSourceConnector
from connectors.sql import SqlSourceConnector

__all__ = [
    "DELETED",
    "ERRORS",
    "ROW_REF",
    "Backlog",
    "Connector",
    "FileDropConnector",
    "ReadBatch",
    "RestRetriesExhaustedError",
    "RestSourceConnector",
    "SqlSourceConnector",
    "UnreadableFileError",
    "apply_mapping",
    "open_connector",
    "output_schema",
]
