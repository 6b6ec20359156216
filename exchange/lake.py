"""The lake: one Delta table per license type, keyed by the license's business key.

Each ingest batch is one ``merge`` whose commit carries an application transaction
``(app_id=<source>, version=<batch seq>)`` and the connector state it reached, so data and
watermark are committed together and a batch that already committed is never applied twice
(DESIGN.md §7). Tables have the change data feed on; issuance reads it.

Row layout (see :func:`lake_schema`): the catalog fields, except that every ID-number field
``f`` is replaced by ``f__key`` (the holder key) and ``f__enc`` (the number encrypted under the
hub's data key with the holder key as associated data). No plaintext ID number is ever written.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from deltalake import (
    CommitProperties,
    DeltaTable,
    PostCommitHookProperties,
    Transaction,
    write_deltalake,
)
from deltalake.exceptions import TableNotFoundError

from catalog_schemas.errors import FatalError
from catalog_schemas.model import FieldSpec, LicenseType

logger = logging.getLogger(__name__)

BUCKETS = 16
_STATE_KEY = "onehub.state"
_SOURCE_KEY = "onehub.source"
_SEQ_KEY = "onehub.batch_seq"

_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "code": pa.string(),
    "date": pa.date32(),
    "integer": pa.int64(),
    "decimal": pa.float64(),
}
ID_TYPES = ("resident_id", "credit_code", "holder_id")

SYSTEM_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("record_key", pa.string()),
    ("holder_key", pa.string()),
    ("holder_bucket", pa.int32()),
    ("_deleted", pa.bool_()),
    ("_source", pa.string()),
    ("_batch_id", pa.string()),
    ("_row_ref", pa.string()),
    ("_ingested_at", pa.timestamp("us", tz="UTC")),
    ("_row_hash", pa.string()),
)


def field_columns(spec: FieldSpec) -> list[pa.Field]:
    """The lake columns that hold one catalog field."""
    if spec.type in ID_TYPES:
        return [
            pa.field(f"{spec.name}__key", pa.string()),
            pa.field(f"{spec.name}__enc", pa.string()),
        ]
    return [pa.field(spec.name, _ARROW_TYPES[spec.type])]


def lake_schema(license_type: LicenseType) -> pa.Schema:
    """The Arrow schema of a license type's lake table."""
    fields = [pa.field(name, typ) for name, typ in SYSTEM_COLUMNS]
    for spec in license_type.fields:
        fields.extend(field_columns(spec))
    return pa.schema(fields)


def table_uri(lake_uri: str, license_type: str) -> str:
    return f"{lake_uri.rstrip('/')}/{license_type}"


@dataclass(frozen=True)
class CommitResult:
    version: int | None
    rows_inserted: int
    rows_updated: int
    skipped: bool


class LakeTable:
    """One license type's Delta table."""

    def __init__(self, lake_uri: str, license_type: LicenseType) -> None:
        self.license_type = license_type
        self.uri = table_uri(lake_uri, license_type.code)
        self.schema = lake_schema(license_type)

    def ensure(self) -> DeltaTable:
        """Open the table, creating it (change data feed on) when absent."""
        try:
            return DeltaTable(self.uri)
        except TableNotFoundError:
            if "://" not in self.uri:
                Path(self.uri).mkdir(parents=True, exist_ok=True)
            logger.info("creating lake table %s", self.uri)
            return DeltaTable.create(
                self.uri,
                self.schema,
                mode="ignore",
                partition_by=["holder_bucket"],
                name=self.license_type.code,
                description=f"{self.license_type.name_zh} {self.license_type.name_en}",
                configuration={"delta.enableChangeDataFeed": "true"},
            )

    def exists(self) -> bool:
        return DeltaTable.is_deltatable(self.uri)

    def committed_seq(self, source: str) -> int:
        """The last batch sequence of ``source`` committed to this table (0 if none)."""
        if not self.exists():
            return 0
        return DeltaTable(self.uri).transaction_version(source) or 0

    def committed_state(self, source: str) -> dict[str, Any] | None:
        """The connector state committed with the source's last batch, or None."""
        if not self.exists():
            return None
        dt = DeltaTable(self.uri)
        seq = dt.transaction_version(source)
        if seq is None:
            return None
        for commit in dt.history():
            if commit.get(_SOURCE_KEY) == source and int(commit.get(_SEQ_KEY, -1)) == seq:
                state: dict[str, Any] = json.loads(commit[_STATE_KEY])
                return state
        raise FatalError(
            f"lake table {self.uri}: transaction {source}@{seq} has no state "
            "in the retained history",
            code="lake_state_missing",
        )

    def commit_batch(
        self, rows: pa.Table, *, source: str, seq: int, state: dict[str, Any]
    ) -> CommitResult:
        """Upsert ``rows`` and record (source, seq, state) in the same commit, exactly once."""
        dt = self.ensure()
        already = dt.transaction_version(source) or 0
        if seq <= already:
            logger.info("batch %s@%d already committed to %s; skipping", source, seq, self.uri)
            return CommitResult(version=None, rows_inserted=0, rows_updated=0, skipped=True)
        if seq != already + 1:
            raise FatalError(
                f"batch {source}@{seq} would leave a gap after {already}", code="lake_batch_gap"
            )
        props = CommitProperties(
            custom_metadata={_SOURCE_KEY: source, _SEQ_KEY: seq, _STATE_KEY: json.dumps(state)},
            app_transactions=[Transaction(app_id=source, version=seq)],
        )
        rows = rows.select(self.schema.names).cast(self.schema)
        before = dt.version()
        metrics: dict[str, Any] = {}
        if rows.num_rows:
            metrics = (
                dt.merge(
                    rows,
                    predicate="t.record_key = s.record_key",
                    source_alias="s",
                    target_alias="t",
                    commit_properties=props,
                    # Not streamed: delta-rs can then prune lake files whose key range cannot
                    # match the batch (measured: 30 merges of 50k rows at 323-419 MiB instead of
                    # 929 MiB, 0.09 s instead of 0.5 s a merge; bench/results/connector.md).
                    streamed_exec=False,
                )
                .when_matched_update_all(predicate="t._row_hash <> s._row_hash")
                .when_not_matched_insert_all()
                .execute()
            )
        dt = DeltaTable(self.uri)
        if dt.version() == before:
            # A merge that changes nothing writes no commit; the batch's state must still be
            # recorded, so commit an empty append that carries the same transaction.
            write_deltalake(dt, self.schema.empty_table(), mode="append", commit_properties=props)
            dt = DeltaTable(self.uri)
        return CommitResult(
            version=dt.version(),
            rows_inserted=int(metrics.get("num_target_rows_inserted", 0)),
            rows_updated=int(metrics.get("num_target_rows_updated", 0)),
            skipped=False,
        )

    def version(self) -> int:
        return DeltaTable(self.uri).version() if self.exists() else -1

    def changes(self, *, after_version: int) -> pa.Table:
        """Rows inserted, updated and deleted after ``after_version`` (the change data feed)."""
        dt = DeltaTable(self.uri)
        if dt.version() <= after_version:
            return pa.table({})
        reader = dt.load_cdf(starting_version=after_version + 1, ending_version=dt.version())
        table = pa.table(reader.read_all())
        # delta-rs hands merged files back as string_view; cast to the declared schema.
        wanted = [
            *self.schema,
            pa.field("_change_type", pa.string()),
            pa.field("_commit_version", pa.int64()),
        ]
        return table.select([f.name for f in wanted]).cast(pa.schema(wanted))

    def compact(self) -> int:
        """Rewrite small files into larger ones (bin-packing); the number of files removed.

        An OPTIMIZE commit changes no data, so the change data feed shows nothing for it and
        issuance is unaffected. Expired log files are left alone: the committed connector state
        is read back from the commit history.
        """
        if not self.exists():
            return 0
        metrics = DeltaTable(self.uri).optimize.compact(
            post_commithook_properties=PostCommitHookProperties(cleanup_expired_logs=False)
        )
        return int(metrics.get("numFilesRemoved", 0))

    def vacuum(self, retention_hours: int) -> int:
        """Delete files no version younger than ``retention_hours`` needs; how many were deleted.

        Time travel and the change feed stop working for versions older than the retention, so
        the caller vacuums only once issuance has read the change feed up to the latest version.
        """
        if retention_hours < 0:
            raise FatalError("retention_hours must not be negative", code="lake_retention")
        if not self.exists():
            return 0
        deleted = DeltaTable(self.uri).vacuum(
            retention_hours=retention_hours,
            dry_run=False,
            # The retention is the deployment's setting (checked above), not Delta's one-week
            # default, which would refuse anything shorter.
            enforce_retention_duration=False,
            post_commithook_properties=PostCommitHookProperties(cleanup_expired_logs=False),
        )
        return len(deleted)

    def count(self) -> int:
        if not self.exists():
            return 0
        return int(DeltaTable(self.uri).count())

    def read(self, columns: list[str] | None = None) -> pa.Table:
        return pa.table(DeltaTable(self.uri).to_pyarrow_table(columns=columns)).cast(
            self.schema if columns is None else pa.schema([self.schema.field(c) for c in columns])
        )
