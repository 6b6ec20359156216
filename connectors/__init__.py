"""Connectors: incremental reads of department sources as Arrow batches, and the source mapping."""

from connectors.base import ROW_REF, Connector, ReadBatch
from connectors.connector import open_connector
from connectors.file_drop import FileDropConnector, UnreadableFileError
from connectors.mapping import ERRORS, apply_mapping, output_schema
from connectors.sql import SqlSourceConnector

__all__ = [
    "ERRORS",
    "ROW_REF",
    "Connector",
    "FileDropConnector",
    "ReadBatch",
    "SqlSourceConnector",
    "UnreadableFileError",
    "apply_mapping",
    "open_connector",
    "output_schema",
]
