"""Tables of the license store (typed SQLAlchemy 2.0); ``metadata`` lets the hub create them."""

from __future__ import annotations

import datetime as dt
from typing import Final

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

KEY_ACTIVE: Final = "active"
KEY_RETIRED: Final = "retired"
KEY_STATUSES: Final = (KEY_ACTIVE, KEY_RETIRED)

VALID: Final = "valid"
SUPERSEDED: Final = "superseded"
CANCELLED: Final = "cancelled"
SUSPENDED: Final = "suspended"
REVOKED: Final = "revoked"
EXPIRED: Final = "expired"
LICENSE_STATUSES: Final = (VALID, SUPERSEDED, CANCELLED, SUSPENDED, REVOKED, EXPIRED)

_NAMING: Final = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UTCDateTime(TypeDecorator[dt.datetime]):
    """An aware UTC datetime on every backend (SQLite has no time zones, so store naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError("UTCDateTime needs an aware datetime")
        value = value.astimezone(dt.UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base of the license store's own tables."""

    metadata = MetaData(naming_convention=_NAMING)


metadata = Base.metadata


class SigningKey(Base):
    """An issuer signing key; the private key is stored only encrypted under the KEK."""

    __tablename__ = "signing_keys"
    __table_args__ = (
        CheckConstraint(_in("status", KEY_STATUSES), name="status"),
        # At most one active key: a second concurrent ensure/rotate fails instead of forking.
        Index(
            "uq_signing_keys_one_active",
            "status",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(16))
    public_key: Mapped[bytes] = mapped_column(LargeBinary(64))
    private_key_enc: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    retired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"SigningKey(kid={self.kid!r}, algorithm={self.algorithm!r}, status={self.status!r})"


class License(Base):
    """One version of a license; the signed credential is stored encrypted (it holds ID numbers)."""

    __tablename__ = "licenses"
    __table_args__ = (
        UniqueConstraint("record_key", "version"),
        # Serials are per (type, issuer) and shared by the versions of one record.
        UniqueConstraint("license_type", "issuer_department", "serial", "version"),
        CheckConstraint(_in("status", LICENSE_STATUSES), name="status"),
        CheckConstraint("version >= 1 AND version <= 999", name="version"),
    )

    license_id: Mapped[str] = mapped_column(String(96), primary_key=True)
    record_key: Mapped[str] = mapped_column(String(255))
    version: Mapped[int] = mapped_column(Integer)
    serial: Mapped[int] = mapped_column(BigInteger)
    license_type: Mapped[str] = mapped_column(String(64))
    issuer_department: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    valid_from: Mapped[dt.date | None] = mapped_column(Date)
    valid_until: Mapped[dt.date | None] = mapped_column(Date)
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    status_changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    row_hash: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(128))
    batch_id: Mapped[str] = mapped_column(String(128))
    as_of: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    key_id: Mapped[str] = mapped_column(String(128))
    credential_enc: Mapped[str] = mapped_column(Text)

    holders: Mapped[list[LicenseHolder]] = relationship(
        back_populates="license", lazy="selectin", order_by="LicenseHolder.role"
    )

    def __repr__(self) -> str:
        return f"License(license_id={self.license_id!r}, status={self.status!r})"


class LicenseHolder(Base):
    """Who holds a license, by holder_key (the HMAC), with the ID number only masked."""

    __tablename__ = "license_holders"

    license_id: Mapped[str] = mapped_column(
        ForeignKey("licenses.license_id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder_key: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    kind: Mapped[str] = mapped_column(String(16))
    id_masked: Mapped[str] = mapped_column(String(64))

    license: Mapped[License] = relationship(back_populates="holders")


class IssuanceCursor(Base):
    """How far issuance has read a source (e.g. a lake table's Delta version)."""

    __tablename__ = "issuance_cursors"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
