"""The quality package's tables in the hub database: quarantine, held batches, quality runs.

No table holds an ID number in plaintext: rejected and held rows keep ID fields encrypted
(see :mod:`quality.quarantine`), and quality runs keep counts only.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER only
_TIME = sa.DateTime(timezone=True)

#: Quarantine row states: waiting for a fix, or replayed into the lake.
OPEN = "open"
RESOLVED = "resolved"


class Base(DeclarativeBase):
    """Declarative base of the quality package's tables."""


metadata = Base.metadata


class QuarantineRow(Base):
    """One rejected row of one batch of one source, and what became of it."""

    __tablename__ = "quarantine_rows"
    __table_args__ = (
        sa.UniqueConstraint("source", "batch_seq", "row_ref", name="uq_quarantine_rows_row"),
        sa.Index("ix_quarantine_rows_status", "source", "status"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(sa.String(64))
    license_type: Mapped[str] = mapped_column(sa.String(64))
    batch_seq: Mapped[int] = mapped_column(sa.BigInteger())
    row_ref: Mapped[str] = mapped_column(sa.String(255))
    reasons: Mapped[list[str]] = mapped_column(JSON)
    row_json: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(_TIME)
    status: Mapped[str] = mapped_column(sa.String(16), default=OPEN, server_default=OPEN)
    #: The replay batch (``replay:<source>:<seq>``) that put the fixed row into the lake.
    resolved_by: Mapped[str | None] = mapped_column(sa.String(128))
    resolved_at: Mapped[dt.datetime | None] = mapped_column(_TIME)
    replays: Mapped[int] = mapped_column(sa.Integer(), default=0, server_default="0")
    last_replayed_at: Mapped[dt.datetime | None] = mapped_column(_TIME)
    #: Why the last replay still failed (reason codes only).
    last_replay_reasons: Mapped[list[str] | None] = mapped_column(JSON)


class HeldBatch(Base):
    """A batch above its source's threshold: nothing of it was published; kept for inspection.

    One row per distinct failure of a batch: a retry that fails the same way raises ``attempts``
    instead of adding a row (``digest`` covers the rejected row refs and their reasons).
    """

    __tablename__ = "held_batches"
    __table_args__ = (
        sa.UniqueConstraint("source", "batch_seq", "digest", name="uq_held_batches_batch"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(sa.String(64), index=True)
    license_type: Mapped[str] = mapped_column(sa.String(64))
    batch_seq: Mapped[int] = mapped_column(sa.BigInteger())
    digest: Mapped[str] = mapped_column(sa.String(64))
    rows_in: Mapped[int] = mapped_column(sa.Integer())
    rows_rejected: Mapped[int] = mapped_column(sa.Integer())
    #: Rejected rows that count towards the threshold (not those missing only a watermark).
    rows_counted: Mapped[int] = mapped_column(sa.Integer())
    threshold: Mapped[float] = mapped_column(sa.Float())
    reasons: Mapped[dict[str, int]] = mapped_column(JSON)
    quality_run_id: Mapped[int | None] = mapped_column(sa.BigInteger())
    created_at: Mapped[dt.datetime] = mapped_column(_TIME)
    last_seen_at: Mapped[dt.datetime] = mapped_column(_TIME)
    attempts: Mapped[int] = mapped_column(sa.Integer(), default=1)


class HeldRow(Base):
    """One rejected row of a held batch (ID fields encrypted as in the quarantine)."""

    __tablename__ = "held_rows"
    __table_args__ = (sa.UniqueConstraint("held_batch_id", "row_ref", name="uq_held_rows_row"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    held_batch_id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey("held_batches.id", ondelete="CASCADE"),
        index=True,
    )
    row_ref: Mapped[str] = mapped_column(sa.String(255))
    reasons: Mapped[list[str]] = mapped_column(JSON)
    row_json: Mapped[dict[str, Any]] = mapped_column(JSON)


class QualityRun(Base):
    """One run of the gate over a source (an ingest run, or a replay), with its totals."""

    __tablename__ = "quality_runs"
    __table_args__ = (sa.Index("ix_quality_runs_source_started", "source", "started_at"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(sa.String(64))
    license_type: Mapped[str] = mapped_column(sa.String(64))
    kind: Mapped[str] = mapped_column(sa.String(16))  # ingest / replay
    ingest_run_id: Mapped[int | None] = mapped_column(sa.BigInteger())
    started_at: Mapped[dt.datetime] = mapped_column(_TIME)
    updated_at: Mapped[dt.datetime] = mapped_column(_TIME)
    status: Mapped[str] = mapped_column(sa.String(16))  # passed (the threshold) / held
    batches: Mapped[int] = mapped_column(sa.Integer(), default=0)
    rows_in: Mapped[int] = mapped_column(sa.BigInteger(), default=0)
    rows_good: Mapped[int] = mapped_column(sa.BigInteger(), default=0)
    rows_rejected: Mapped[int] = mapped_column(sa.BigInteger(), default=0)
    #: Rows per reason code (the detailed ones: ``id_check_char:party_a_id``, ``bad_date:...``).
    reasons: Mapped[dict[str, int]] = mapped_column(JSON)
    report_uri: Mapped[str | None] = mapped_column(sa.String(1024))


class QualityCheck(Base):
    """Counts of one expectation (or mapping check) on one batch of a quality run."""

    __tablename__ = "quality_checks"
    __table_args__ = (
        sa.UniqueConstraint("run_id", "batch_seq", "reason", name="uq_quality_checks_check"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey("quality_runs.id", ondelete="CASCADE"),
        index=True,
    )
    batch_seq: Mapped[int] = mapped_column(sa.BigInteger())
    #: The check's reason code (``not_null:party_a_name``, ``id:party_a_id``, ``bad_date:...``).
    reason: Mapped[str] = mapped_column(sa.String(255))
    #: The GX expectation type, or ``mapping`` for a conversion the source mapping made.
    expectation: Mapped[str] = mapped_column(sa.String(128))
    columns: Mapped[str] = mapped_column(sa.String(255))
    element_count: Mapped[int] = mapped_column(sa.BigInteger())
    unexpected_count: Mapped[int] = mapped_column(sa.BigInteger())
    held: Mapped[bool] = mapped_column(sa.Boolean(), default=False)
