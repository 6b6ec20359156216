"""The exchange's own tables in the hub database: runs, consumers, consents, the audit log."""

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


class SupervisionCard(Base):
    """A yellow or red card (效能監督) raised against a source; open while ``closed_at`` is null.

    At most one card per (source, kind) is open: the partial unique index makes two concurrent
    evaluations (an ingest DAG's and the maintenance DAG's) unable to open the same card twice.
    """

    __tablename__ = "supervision_cards"
    __table_args__ = (
        sa.Index(
            "uq_supervision_cards_open",
            "source",
            "kind",
            unique=True,
            sqlite_where=sa.text("closed_at IS NULL"),
            postgresql_where=sa.text("closed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(sa.String(64), index=True)
    department: Mapped[str] = mapped_column(sa.String(64))
    kind: Mapped[str] = mapped_column(sa.String(16))  # freshness / quality
    color: Mapped[str] = mapped_column(sa.String(8))  # yellow / red
    reason: Mapped[str] = mapped_column(sa.Text)
    sla_hours: Mapped[float]
    last_load_at: Mapped[dt.datetime | None]
    ingest_run_id: Mapped[int | None]  # the first run the quality gate rejected (quality cards)
    raised_at: Mapped[dt.datetime]
    closed_at: Mapped[dt.datetime | None]
    closed_because: Mapped[str | None] = mapped_column(sa.String(16))  # resolved / escalated


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
    # Derived from the catalog's sharing classes at registration (exchange.sharing.scopes_for);
    # a call is allowed only where both the scopes and the live catalog allow it.
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    rate_limit: Mapped[str | None] = mapped_column(sa.String(64))  # e.g. "50/second"; None: default
    key_rotated_at: Mapped[dt.datetime | None]
    disabled_at: Mapped[dt.datetime | None]


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
    # Which request this row answers (the client's X-Request-ID, or one the API made).
    request_id: Mapped[str | None] = mapped_column(sa.String(64))
    # Hidden from the holder's access history until this date (China time), when set by a
    # consumer with the audit:restrict scope (e.g. an investigation must not be tipped off).
    restricted_until: Mapped[dt.date | None]
    # Every sharing decision of the call: {"decisions": {type: allow|consent_required|deny}, ...}
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    row_hash: Mapped[str] = mapped_column(sa.String(64))


class AuditHead(Base):
    """The chain's last seq and hash (one row): appends lock it, and a cut-off tail shows."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(sa.BigInteger)
    row_hash: Mapped[str] = mapped_column(sa.String(64))


class AuditLicense(Base):
    """Which licenses an audit row touched, so every holder of a license finds the access."""

    __tablename__ = "audit_licenses"

    seq: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    license_id: Mapped[str] = mapped_column(sa.String(96), primary_key=True, index=True)


class Consent(Base):
    """A holder's consent that a consumer reads conditional-share licenses for one purpose.

    The consumer that records it vouches that it authenticated the holder.
    """

    __tablename__ = "consents"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    holder_key: Mapped[str] = mapped_column(sa.String(64), index=True)
    consumer: Mapped[str] = mapped_column(sa.String(128))
    purpose: Mapped[str] = mapped_column(sa.String(256))
    license_types: Mapped[list[Any]]  # empty: every conditional type the consumer may read
    recorded_by: Mapped[str] = mapped_column(sa.String(128))
    granted_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(sa.String(128))
