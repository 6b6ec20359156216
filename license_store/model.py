"""Tables of the license store (typed SQLAlchemy 2.0); ``metadata`` lets the hub create them."""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Sequence,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# active: signs and verifies; rotated: no longer signs, still verifies; retired: verifies nothing,
# and a credential it signed is reported as signed by a retired key.
KEY_ACTIVE: Final = "active"
KEY_ROTATED: Final = "rotated"
KEY_RETIRED: Final = "retired"
KEY_STATUSES: Final = (KEY_ACTIVE, KEY_ROTATED, KEY_RETIRED)

VALID: Final = "valid"
SUPERSEDED: Final = "superseded"
CANCELLED: Final = "cancelled"
SUSPENDED: Final = "suspended"
REVOKED: Final = "revoked"
EXPIRED: Final = "expired"
LICENSE_STATUSES: Final = (VALID, SUPERSEDED, CANCELLED, SUSPENDED, REVOKED, EXPIRED)
# The national status names (电子证照状态) shown beside ours.
NATIONAL_STATUS: Final = {
    VALID: "有效",
    SUSPENDED: "暂扣",
    REVOKED: "撤销",
    CANCELLED: "注销",
    EXPIRED: "失效",
}
REVOCATION: Final = "revocation"
SUSPENSION: Final = "suspension"
STATUS_PURPOSES: Final = (REVOCATION, SUSPENSION)

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

# Status-list indexes on PostgreSQL come from this sequence, so several issuers can run at once
# (a sequence never blocks and is never rolled back: a number drawn and not used is a harmless
# gap in the lists). Databases without sequences take the highest index + 1.
STATUS_INDEX_SEQUENCE: Final = Sequence(
    "license_status_index_seq", start=0, minvalue=0, metadata=metadata
)


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
    rotated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
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
        CheckConstraint("status_index >= 0", name="status_index"),
        # The expiry sweep and status-list publication select by status.
        Index("ix_licenses_status_valid_until", "status", "valid_until"),
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
    # Compare-and-swap counter: every status change bumps it, so of two changes made from the
    # same reading only one can match (even suspend → reinstate → suspend in between).
    status_seq: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # Position in the hub's status lists: list ``status_index // 131072``, bit ``% 131072``.
    status_index: Mapped[int] = mapped_column(BigInteger, unique=True)
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


def _row_by_row_foreign_key(*_: Any, dialect: Dialect, **__: Any) -> bool:
    return dialect.name != "postgresql"


class LicenseHolder(Base):
    """Who holds a license, by holder_key (the HMAC), with the ID number only masked.

    Every holder row names a license that exists. SQLite (and any other database) enforces it
    with a FOREIGN KEY, a probe of the licenses' primary key per row. On PostgreSQL a FOREIGN
    KEY runs a query per row and locks the license row it finds (writing WAL for the lock),
    which was a fifth of the server's CPU per license issued; there statement triggers enforce
    the same rule on each statement's rows at once (:func:`holder_license_rules`).
    """

    __tablename__ = "license_holders"
    __table_args__ = (
        ForeignKeyConstraint(["license_id"], ["licenses.license_id"], ondelete="CASCADE").ddl_if(
            callable_=_row_by_row_foreign_key
        ),
    )

    license_id: Mapped[str] = mapped_column(String(96), primary_key=True)
    role: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder_key: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    kind: Mapped[str] = mapped_column(String(16))
    id_masked: Mapped[str] = mapped_column(String(64))

    license: Mapped[License] = relationship(back_populates="holders")


# PostgreSQL's form of the holder rows' foreign key (see LicenseHolder): the same rules, checked
# once per statement over the rows it wrote (one COPY of an issuance batch is one statement),
# not by a query and a row lock per row. The functions run as their owner, with the search path
# pinned to the schema they are made in and pg_temp last (no temporary table can stand in for
# these tables), as a foreign key's checks do. Unlike a foreign key they take no lock on the
# license: docs/licenses.md (Storage) says what that leaves open. The hub itself only ever adds
# holder rows to licenses it inserts in the same transaction.
_FUNCTION_HEAD: Final = (
    "CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql"
    " SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$\n"
)
_FUNCTIONS: Final = {
    "license_holders_check_license": """DECLARE
    missing text;
BEGIN
    SELECT h.license_id INTO missing FROM license_holders_new h
    WHERE NOT EXISTS (SELECT 1 FROM licenses l WHERE l.license_id = h.license_id)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'a license_holders row names license %, which is not in licenses',
            missing
            USING ERRCODE = 'foreign_key_violation', TABLE = 'license_holders',
                CONSTRAINT = 'fk_license_holders_license_id_licenses';
    END IF;
    RETURN NULL;
END $$""",
    "licenses_delete_holders": """BEGIN
    DELETE FROM license_holders h USING licenses_old o WHERE h.license_id = o.license_id;
    RETURN NULL;
END $$""",
    "licenses_keep_held_id": """BEGIN
    IF EXISTS (SELECT 1 FROM license_holders WHERE license_id = OLD.license_id) THEN
        RAISE EXCEPTION 'license % has holder rows: its identifier cannot change',
            OLD.license_id
            USING ERRCODE = 'foreign_key_violation', TABLE = 'licenses',
                CONSTRAINT = 'fk_license_holders_license_id_licenses';
    END IF;
    RETURN NEW;
END $$""",
    # `TRUNCATE licenses, license_holders` holds the holders open (object_in_use); that
    # statement empties them anyway, and DELETE does too.
    "licenses_truncate_holders": """BEGIN
    TRUNCATE license_holders;
    RETURN NULL;
EXCEPTION WHEN object_in_use THEN
    DELETE FROM license_holders;
    RETURN NULL;
END $$""",
}
# (name, table, definition after the name).
_TRIGGERS: Final = (
    (
        "license_holders_insert_check",
        "license_holders",
        "AFTER INSERT ON license_holders REFERENCING NEW TABLE AS license_holders_new"
        " FOR EACH STATEMENT EXECUTE FUNCTION license_holders_check_license()",
    ),
    (
        "license_holders_update_check",
        "license_holders",
        "AFTER UPDATE ON license_holders REFERENCING NEW TABLE AS license_holders_new"
        " FOR EACH STATEMENT EXECUTE FUNCTION license_holders_check_license()",
    ),
    (
        "licenses_delete_holders",
        "licenses",
        "AFTER DELETE ON licenses REFERENCING OLD TABLE AS licenses_old"
        " FOR EACH STATEMENT EXECUTE FUNCTION licenses_delete_holders()",
    ),
    (
        "licenses_keep_held_id",
        "licenses",
        "BEFORE UPDATE OF license_id ON licenses FOR EACH ROW"
        " WHEN (OLD.license_id IS DISTINCT FROM NEW.license_id)"
        " EXECUTE FUNCTION licenses_keep_held_id()",
    ),
    (
        "licenses_truncate_holders",
        "licenses",
        "AFTER TRUNCATE ON licenses FOR EACH STATEMENT"
        " EXECUTE FUNCTION licenses_truncate_holders()",
    ),
)
HOLDER_TRIGGER_NAMES: Final = tuple(name for name, _, _ in _TRIGGERS)


def holder_license_rules(schema: str) -> list[str]:
    """The statements that put the rules in place in ``schema`` (a quoted identifier)."""
    statements = [
        _FUNCTION_HEAD.format(name=name, schema=schema) + body for name, body in _FUNCTIONS.items()
    ]
    for name, table, definition in _TRIGGERS:
        statements += (
            f"DROP TRIGGER IF EXISTS {name} ON {table}",
            f"CREATE TRIGGER {name} {definition}",
        )
    return statements


# In place in the current schema: the five triggers on its two tables, and no foreign key.
_HOLDER_RULES_IN_PLACE: Final = text(
    "SELECT (SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgenabled <> 'D'"
    " AND tgrelid IN ('licenses'::regclass, 'license_holders'::regclass)"
    " AND tgname IN ("
    + ", ".join(f"'{name}'" for name in HOLDER_TRIGGER_NAMES)
    + f")) = {len(HOLDER_TRIGGER_NAMES)}"
    " AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE contype = 'f'"
    " AND conrelid = 'license_holders'::regclass AND confrelid = 'licenses'::regclass)"
)


def ensure_holder_license_rules(connection: Connection) -> None:
    """On PostgreSQL, put the holder rows' license rule in place as triggers (idempotent).

    A hub database created before the triggers has the FOREIGN KEY instead: it is dropped here,
    in the same transaction as the triggers are made. Both tables are locked first, in the
    order issuance takes them (licenses, then holders), so a migration waits for a running
    issuance instead of deadlocking with it (and gives up after lock_timeout).
    """
    if connection.dialect.name != "postgresql":
        return
    if connection.execute(_HOLDER_RULES_IN_PLACE).scalar():
        return
    schema = connection.execute(text("SELECT current_schema()")).scalar_one()
    connection.execute(text("SET LOCAL lock_timeout = '60s'"))
    connection.execute(text("LOCK TABLE licenses, license_holders IN ACCESS EXCLUSIVE MODE"))
    connection.execute(
        text(
            "ALTER TABLE license_holders DROP CONSTRAINT IF EXISTS"
            " fk_license_holders_license_id_licenses"
        )
    )
    quoted = connection.dialect.identifier_preparer.quote(schema)
    for statement in holder_license_rules(quoted):
        connection.execute(text(statement))


@event.listens_for(LicenseHolder.__table__, "after_create")
def _holder_license_rules(target: Table, connection: Connection, **_: object) -> None:
    ensure_holder_license_rules(connection)


@event.listens_for(LicenseHolder.__table__, "before_drop")
def _drop_licenses_triggers(target: Table, connection: Connection, **_: object) -> None:
    # The triggers on licenses name license_holders: they go with it.
    if connection.dialect.name != "postgresql":
        return
    for name, table, _definition in _TRIGGERS:
        if table == "licenses":
            connection.execute(text(f"DROP TRIGGER IF EXISTS {name} ON licenses"))


class LicenseStatusChange(Base):
    """One status transition of a license version: who, when, why; ``seq`` matches status_seq."""

    __tablename__ = "license_status_history"
    __table_args__ = (
        CheckConstraint(_in("to_status", LICENSE_STATUSES), name="to_status"),
        CheckConstraint("seq >= 1", name="seq"),
    )

    license_id: Mapped[str] = mapped_column(
        ForeignKey("licenses.license_id", ondelete="CASCADE"), primary_key=True
    )
    # (license_id, seq) is the key: two changes that read the same status_seq cannot both land.
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    # None for a version issued straight into a status (a new version of a suspended record).
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(128))
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class PublishedStatusList(Base):
    """The current signed Bitstring Status List credential of one purpose and list id."""

    __tablename__ = "status_lists"
    __table_args__ = (
        CheckConstraint(_in("purpose", STATUS_PURPOSES), name="purpose"),
        CheckConstraint("list_id >= 0", name="list_id"),
    )

    purpose: Mapped[str] = mapped_column(String(16), primary_key=True)
    list_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Bumped by every publication (compare-and-swap, and a cache validator for the API).
    sequence: Mapped[int] = mapped_column(Integer)
    published_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    set_bits: Mapped[int] = mapped_column(Integer)
    key_id: Mapped[str] = mapped_column(String(128))
    # No personal data: indices and the hub's signature only.
    credential: Mapped[str] = mapped_column(Text)


class IssuanceCursor(Base):
    """How far issuance has read a source (e.g. a lake table's Delta version)."""

    __tablename__ = "issuance_cursors"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
