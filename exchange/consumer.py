"""Registered consumers of the exchange API and their keys (stored hashed, shown once).

A key reads ``oh_<key id>_<secret>``. The key id finds the row; only SHA-256 of the secret is
stored (the secret is 256 random bits, so a slow password hash would add nothing). A disabled
consumer is refused on its next call: every call reads the row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from typing import Any, Final, cast

import sqlalchemy as sa
from limits import parse_many
from sqlalchemy.orm import Session

from catalog_schemas.catalog import Catalog
from catalog_schemas.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationFailedError,
)
from exchange.model import Consumer
from exchange.sharing import CONSUMER_KINDS, RESTRICT_SCOPE, ConsumerKind, scopes_for

_PREFIX: Final = "oh"
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
MAX_KEY_CHARS: Final = 128


class ConsumerNotFoundError(NotFoundError):
    """No consumer has this name."""

    code = "consumer_not_found"


_CONSUMERS = cast(sa.Table, Consumer.__table__)
_BY_KEY_ID = sa.select(_CONSUMERS).where(_CONSUMERS.c.key_id == sa.bindparam("key_id"))


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def _new_key() -> tuple[str, str, str]:
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return key_id, _hash(secret), f"{_PREFIX}_{key_id}_{secret}"


def check_rate_limit(text: str) -> str:
    """``text`` if the limits library parses it (``"50/second"``, ``"10/second;500/minute"``)."""
    try:
        parse_many(text)
    except ValueError:
        raise ValidationFailedError(
            f"rate limit {text!r} is not like '50/second' or '10/second;500/minute'",
            code="rate_limit_invalid",
        ) from None
    return text


def register(
    *,
    session: Session,
    catalog: Catalog,
    name: str,
    kind: ConsumerKind,
    department: str,
    now: dt.datetime,
    may_restrict: bool = False,
    rate_limit: str | None = None,
) -> tuple[Consumer, str]:
    """Register a consumer; returns it and its API key, which is never shown again."""
    if not _NAME.fullmatch(name):
        raise ValidationFailedError(
            "a consumer name is 1-128 letters, digits, '.', '_' or '-'", code="consumer_name"
        )
    if kind not in CONSUMER_KINDS:
        raise ValidationFailedError(
            f"consumer kind must be one of {', '.join(CONSUMER_KINDS)}", code="consumer_kind"
        )
    if may_restrict and kind != "department":
        raise ValidationFailedError(
            "only a department may be allowed to restrict audit entries", code="consumer_kind"
        )
    catalog.department(department)  # raises CatalogError for an unknown department
    if rate_limit is not None:
        check_rate_limit(rate_limit)
    if session.scalar(sa.select(Consumer.id).where(Consumer.name == name)) is not None:
        raise ConflictError(f"consumer {name!r} already exists", code="consumer_exists")
    key_id, key_hash, key = _new_key()
    consumer = Consumer(
        name=name,
        kind=kind,
        department=department,
        key_id=key_id,
        key_hash=key_hash,
        disabled=False,
        created_at=now,
        scopes=scopes_for(catalog, department=department, kind=kind, may_restrict=may_restrict),
        rate_limit=rate_limit,
    )
    session.add(consumer)
    session.flush()
    return consumer, key


def parse_key(presented: str | None) -> tuple[str, str]:
    """The (key id, secret) of a presented API key; AuthenticationError if there is none."""
    if not presented:
        raise AuthenticationError(
            "an API key is required (Authorization: Bearer <key>)", code="key_missing"
        )
    parts = presented.split("_", 2)
    if len(presented) > MAX_KEY_CHARS or len(parts) != 3 or parts[0] != _PREFIX:
        raise AuthenticationError("the API key is malformed", code="key_invalid")
    return parts[1], parts[2]


def check_admission(row: Mapping[Any, Any] | None, secret: str) -> Mapping[Any, Any]:
    """The row its key id found, if the secret matches and the consumer is enabled."""
    if row is None or not hmac.compare_digest(row["key_hash"], _hash(secret)):
        raise AuthenticationError("the API key is not valid", code="key_invalid")
    if row["disabled"]:
        raise PermissionDeniedError("this consumer is disabled", code="consumer_disabled")
    return row


def admit(row: Mapping[Any, Any] | None, secret: str) -> Consumer:
    """The consumer of the row its key id found, if the secret matches and it is enabled."""
    return Consumer(**check_admission(row, secret))


# The query behind authenticate, for readers that run it on their own driver (exchange.reader).
CONSUMER_BY_KEY_ID = _BY_KEY_ID


def authenticate(*, session: Session, presented: str | None) -> Consumer:
    """The consumer a presented API key belongs to; AuthenticationError or PermissionDeniedError."""
    key_id, secret = parse_key(presented)
    # Every call reads the row (so a disabled consumer is refused at once), through Core: the
    # ORM's identity map would cost more than the query.
    row = session.connection().execute(_BY_KEY_ID, {"key_id": key_id}).mappings().first()
    return admit(row, secret)


def get_consumer(*, session: Session, name: str) -> Consumer:
    """The consumer called ``name``, or ConsumerNotFoundError."""
    consumer = session.scalar(sa.select(Consumer).where(Consumer.name == name))
    if consumer is None:
        raise ConsumerNotFoundError(f"no consumer {name!r}")
    return consumer


def list_consumers(*, session: Session) -> list[Consumer]:
    """Every consumer, in registration order."""
    return list(session.scalars(sa.select(Consumer).order_by(Consumer.id)))


def disable(*, session: Session, name: str, now: dt.datetime) -> Consumer:
    """Disable a consumer: its key is refused from its next call on."""
    consumer = get_consumer(session=session, name=name)
    if not consumer.disabled:
        consumer.disabled = True
        consumer.disabled_at = now
        session.flush()
    return consumer


def rotate_key(*, session: Session, name: str, now: dt.datetime) -> tuple[Consumer, str]:
    """Give a consumer a new key (the old one stops working at once); returns the new key."""
    consumer = get_consumer(session=session, name=name)
    key_id, key_hash, key = _new_key()
    consumer.key_id = key_id
    consumer.key_hash = key_hash
    consumer.key_rotated_at = now
    session.flush()
    return consumer, key


def may_restrict(consumer: Consumer) -> bool:
    """Whether the consumer may hide its accesses from the holder's history until a date."""
    return RESTRICT_SCOPE in (consumer.scopes or ())


def require_scope(consumer: Consumer, operation: str) -> None:
    """Raise PermissionDeniedError unless the consumer's scopes include ``operation``."""
    if operation not in (consumer.scopes or ()):
        raise PermissionDeniedError(
            f"a {consumer.kind} consumer may not use this call ({operation})",
            code="scope_missing",
        )
