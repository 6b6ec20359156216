"""The exchange's own tables in the hub database: ingest runs, consumers, the audit log."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: sa.JSON,
        list[Any]: sa.JSON,
        dt.datetime: sa.DateTime(timezone=True),
    }


metadata = Base.metadata


class IngestRun(Base):
    """One run of a source's ingest pipeline and what it counted."""

    __tablename__ = "ingest_runs"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(sa.String(64), index=True)
    started_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime | None]
    status: Mapped[str] = mapped_column(sa.String(16))  # running / success / failed
    batches: Mapped[int] = mapped_column(default=0)
    rows_in: Mapped[int] = mapped_column(default=0)
    rows_loaded: Mapped[int] = mapped_column(default=0)
    rows_quarantined: Mapped[int] = mapped_column(default=0)
    rows_skipped: Mapped[int] = mapped_column(default=0)
    lake_version: Mapped[int | None]
    state: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(sa.Text)


class Consumer(Base):
    """A registered caller of the exchange API: a department or an intake system."""

    __tablename__ = "consumers"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(128), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(16))  # department / counter / online_hall / kiosk
    department: Mapped[str] = mapped_column(sa.String(64))
    key_id: Mapped[str] = mapped_column(sa.String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(sa.String(64))
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime]


class AuditEntry(Base):
    """One access to a holder's data; rows are hash-chained (``row_hash`` covers ``prev_hash``)."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime]
    consumer: Mapped[str] = mapped_column(sa.String(128))
    action: Mapped[str] = mapped_column(sa.String(32))
    purpose: Mapped[str] = mapped_column(sa.String(256))
    service_item: Mapped[str | None] = mapped_column(sa.String(64))
    holder_key: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    licenses: Mapped[list[Any]]
    result: Mapped[str] = mapped_column(sa.String(32))
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    row_hash: Mapped[str] = mapped_column(sa.String(64))
