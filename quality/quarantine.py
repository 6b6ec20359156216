"""The quarantine table: rejected rows with their reasons, ID numbers only encrypted.

Each rejected row is stored once per (source, batch_seq, row_ref), so recording a batch again
after a crash adds nothing. In ``row_json`` every ID field value (``LicenseType.id_fields``) is
``{"masked": "440106********123X", "enc": <FieldCipher token>}`` with associated data
``quarantine:<source>:<row_ref>``; other values are plain JSON.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from catalog_schemas.cipher import FieldCipher
from catalog_schemas.errors import FatalError
from catalog_schemas.holder import mask_id
from catalog_schemas.model import LicenseType

logger = logging.getLogger(__name__)

#: Shortest value shown as first 6 + last 4 characters; shorter ones become ``***``.
MIN_MASKED_LENGTH = 15

#: Columns of a rejected batch that are stored in their own columns, not in ``row_json``.
_META_COLUMNS = frozenset({"_row_ref", "_errors", "_reasons"})


_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


class Base(DeclarativeBase):
    """Declarative base of the quality package's tables."""


metadata = Base.metadata


class QuarantineRow(Base):
    """One rejected row of one batch of one source."""

    __tablename__ = "quarantine_rows"
    __table_args__ = (
        sa.UniqueConstraint("source", "batch_seq", "row_ref", name="uq_quarantine_rows_row"),
    )

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    source: Mapped[str] = mapped_column(sa.String(64))
    license_type: Mapped[str] = mapped_column(sa.String(64))
    batch_seq: Mapped[int] = mapped_column(sa.BigInteger())
    row_ref: Mapped[str] = mapped_column(sa.String(255))
    reasons: Mapped[list[str]] = mapped_column(_JSON)
    row_json: Mapped[dict[str, Any]] = mapped_column(_JSON)
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))


class QuarantineInputError(FatalError):
    """The rejected table lacks a column the quarantine needs."""

    code = "quarantine_input_invalid"


def mask_raw_id(value: str) -> str:
    """Mask a raw (perhaps invalid) ID value: ``440106********123X``, or ``***`` if short."""
    # a rejected value can have any length; below 15 characters the kept 10 would reveal most of it
    if len(value) < MIN_MASKED_LENGTH:
        return "***"
    return mask_id(value)


def row_aad(source: str, row_ref: str) -> str:
    """Associated data binding an encrypted ID to its quarantine row."""
    return f"quarantine:{source}:{row_ref}"


def record_rejected(
    *,
    session: Session,
    source: str,
    batch_seq: int,
    license_type: LicenseType,
    rejected: pa.Table,
    cipher: FieldCipher,
    now: dt.datetime,
) -> int:
    """Insert a batch's rejected rows, skipping those already there; return how many are new."""
    for needed in ("_row_ref", "_reasons"):
        if needed not in rejected.column_names:
            raise QuarantineInputError(f"the rejected table has no {needed} column")
    if rejected.num_rows == 0:
        return 0
    refs = [str(r) for r in rejected.column("_row_ref").to_pylist()]
    existing = set(
        session.scalars(
            sa.select(QuarantineRow.row_ref).where(
                QuarantineRow.source == source, QuarantineRow.batch_seq == batch_seq
            )
        )
    )
    id_fields = set(license_type.id_fields)
    data_columns = [c for c in rejected.column_names if c not in _META_COLUMNS]
    reasons = rejected.column("_reasons").to_pylist()
    rows: list[dict[str, Any]] = []
    for i, record in enumerate(rejected.select(data_columns).to_pylist()):
        ref = refs[i]
        if ref in existing:
            continue
        existing.add(ref)
        aad = row_aad(source, ref)
        row_json = {
            name: _protect(value, cipher=cipher, aad=aad) if name in id_fields else _plain(value)
            for name, value in record.items()
        }
        rows.append(
            {
                "source": source,
                "license_type": license_type.code,
                "batch_seq": batch_seq,
                "row_ref": ref,
                "reasons": [str(r) for r in reasons[i] or []],
                "row_json": row_json,
                "created_at": now,
            }
        )
    if rows:
        session.execute(_insert_ignoring_duplicates(session), rows)
        session.flush()
    logger.info(
        "quarantine %s batch %d: %d rows recorded, %d already there",
        source,
        batch_seq,
        len(rows),
        rejected.num_rows - len(rows),
    )
    return len(rows)


def list_rows(
    *, session: Session, source: str | None = None, limit: int = 100
) -> Sequence[QuarantineRow]:
    """The newest quarantined rows, of one source or all."""
    query = sa.select(QuarantineRow).order_by(QuarantineRow.id.desc()).limit(limit)
    if source is not None:
        query = query.where(QuarantineRow.source == source)
    return session.scalars(query).all()


def decrypt_row(row: QuarantineRow, *, cipher: FieldCipher) -> dict[str, Any]:
    """The row's values with ID numbers decrypted (for an authorised engineer's export only)."""
    aad = row_aad(row.source, row.row_ref)
    out: dict[str, Any] = {}
    for name, value in row.row_json.items():
        if isinstance(value, dict) and set(value) == {"masked", "enc"}:
            out[name] = cipher.decrypt_text(str(value["enc"]), aad=aad)
        else:
            out[name] = value
    return out


def _protect(value: Any, *, cipher: FieldCipher, aad: str) -> Any:
    if value is None:
        return None
    text = str(value)
    return {"masked": mask_raw_id(text), "enc": cipher.encrypt(text, aad=aad)}


def _plain(value: Any) -> Any:
    """A JSON-safe form: dates as ISO text, non-finite floats as text (JSON has no NaN)."""
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _insert_ignoring_duplicates(session: Session) -> Any:
    """An INSERT that skips rows already present (a concurrent writer may have added them)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(QuarantineRow).on_conflict_do_nothing(
            index_elements=["source", "batch_seq", "row_ref"]
        )
    if dialect == "sqlite":
        return sqlite.insert(QuarantineRow).on_conflict_do_nothing(
            index_elements=["source", "batch_seq", "row_ref"]
        )
    # elsewhere the pre-filter has to do; INSERT IGNORE would also hide truncation on MariaDB
    return sa.insert(QuarantineRow)
