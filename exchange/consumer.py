"""Registered consumers of the exchange API and their keys (stored hashed, shown once)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog_schemas.catalog import Catalog
from catalog_schemas.errors import AuthenticationError, ConflictError, PermissionDeniedError
from exchange.model import Consumer

ConsumerKind = Literal["department", "counter", "online_hall", "kiosk"]
_PREFIX = "oh"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def register(
    *,
    session: Session,
    catalog: Catalog,
    name: str,
    kind: ConsumerKind,
    department: str,
    now: dt.datetime,
) -> tuple[Consumer, str]:
    """Register a consumer; returns it and its API key, which is never shown again."""
    catalog.department(department)  # raises CatalogError for an unknown department
    if session.scalar(sa.select(Consumer.id).where(Consumer.name == name)) is not None:
        raise ConflictError(f"consumer {name!r} already exists", code="consumer_exists")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    consumer = Consumer(
        name=name,
        kind=kind,
        department=department,
        key_id=key_id,
        key_hash=_hash(secret),
        disabled=False,
        created_at=now,
    )
    session.add(consumer)
    session.flush()
    return consumer, f"{_PREFIX}_{key_id}_{secret}"


def authenticate(*, session: Session, presented: str | None) -> Consumer:
    """The consumer a presented API key belongs to; AuthenticationError or PermissionDeniedError."""
    if not presented:
        raise AuthenticationError(
            "an API key is required (Authorization: Bearer <key>)", code="key_missing"
        )
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != _PREFIX or len(presented) > 256:
        raise AuthenticationError("the API key is malformed", code="key_invalid")
    consumer = session.scalar(sa.select(Consumer).where(Consumer.key_id == parts[1]))
    if consumer is None or not hmac.compare_digest(consumer.key_hash, _hash(parts[2])):
        raise AuthenticationError("the API key is not valid", code="key_invalid")
    if consumer.disabled:
        raise PermissionDeniedError("this consumer is disabled", code="consumer_disabled")
    return consumer


def list_consumers(*, session: Session) -> list[Consumer]:
    return list(session.scalars(sa.select(Consumer).order_by(Consumer.id)))
