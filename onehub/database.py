"""Hub database set-up, the issuer's keys and license status changes, built from a Hub."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog_schemas.errors import ValidationFailedError
from exchange.audit import ensure_pg_function
from exchange.hub import Hub
from exchange.model import metadata as exchange_metadata
from license_store import status_list
from license_store.key import KeyRing
from license_store.model import Base as LicenseBase
from license_store.model import (
    License,
    LicenseStatusChange,
    SigningKey,
    ensure_holder_license_rules,
)
from license_store.signer import Signer
from license_store.status import StatusChange, change_status, history
from license_store.store import get_license
from quality.model import metadata as quarantine_metadata


def create_schema(engine: sa.Engine) -> None:
    """Create every hub table that does not exist yet (idempotent)."""
    for metadata in (exchange_metadata, LicenseBase.metadata, quarantine_metadata):
        metadata.create_all(engine)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            _keep_credentials_inline(connection)
            # A hub database made before the holder rows' rule became triggers.
            ensure_holder_license_rules(connection)
        with engine.connect() as connection:
            ensure_pg_function(connection)  # the audit log's append (exchange.audit)


# An encrypted credential (~2.4 kB of base64) is over PostgreSQL's 2 kB TOAST threshold, so by
# default every license read also reads the TOAST index and two TOAST pages. Stored inline
# (storage MAIN, toast_tuple_target near a page), a lookup reads one heap page per license.
# Applies to rows written from then on.
_INLINE_CHECK = sa.text(
    "SELECT a.attstorage = 'm' AND coalesce(c.reloptions::text, '') LIKE '%toast_tuple_target%'"
    " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
    " WHERE c.oid = 'licenses'::regclass AND a.attname = 'credential_enc'"
)


def _keep_credentials_inline(connection: sa.Connection) -> None:
    if connection.execute(_INLINE_CHECK).scalar():
        return
    connection.execute(sa.text("ALTER TABLE licenses ALTER COLUMN credential_enc SET STORAGE MAIN"))
    connection.execute(sa.text("ALTER TABLE licenses SET (toast_tuple_target = 8160)"))


def signer_for(hub: Hub) -> Signer:
    """The active signing key's signer, creating the first key if there is none."""
    ring = KeyRing(issuer_did=hub.issuer_did)
    with hub.sessions.begin() as session:
        return ring.signer(session=session, kek=hub.kek, now=hub.now())


def public_keys_document(hub: Hub, fmt: str) -> dict[str, Any]:
    """The hub's public keys as a DID document (``did``) or a JWKS (``jwks``)."""
    ring = KeyRing(issuer_did=hub.issuer_did)
    with hub.sessions() as session:
        if fmt == "did":
            return ring.did_document(session=session)
        if fmt == "jwks":
            return ring.jwks(session=session)
    raise ValidationFailedError(f"unknown key format {fmt!r}: use did or jwks")


@dataclass(frozen=True)
class StatusChangeResult:
    """A status change and the status lists published with it."""

    change: StatusChange
    published: tuple[status_list.PublishedList, ...]


def change_license_status(
    hub: Hub, *, license_id: str, action: str, reason: str, actor: str
) -> StatusChangeResult:
    """Revoke, suspend or reinstate a license and publish the new lists, in one transaction.

    The lists are re-signed in the same transaction as the change: a verifier that fetches
    them after the command returns sees it.
    """
    now = hub.now()
    ring = KeyRing(issuer_did=hub.issuer_did)
    with hub.sessions.begin() as session:
        change = change_status(
            session=session,
            license_id=license_id,
            action=action,
            reason=reason,
            actor=actor,
            now=now,
        )
        published = _publish(hub, session, ring, now)
    return StatusChangeResult(change, published)


def publish_lists(hub: Hub) -> tuple[status_list.PublishedList, ...]:
    """Sign and store the current status lists."""
    ring = KeyRing(issuer_did=hub.issuer_did)
    now = hub.now()
    with hub.sessions.begin() as session:
        return _publish(hub, session, ring, now)


def license_status(hub: Hub, license_id: str) -> tuple[License, list[LicenseStatusChange]]:
    """A license version (no credential) and its status history."""
    with hub.sessions() as session:
        found = get_license(session=session, license_id=license_id)
        session.expunge(found)
        return found, history(session=session, license_id=license_id)


def status_list_credential(hub: Hub, purpose: str, list_id: int) -> dict[str, Any]:
    """The published status list credential of one purpose and list id."""
    with hub.sessions() as session:
        return status_list.current_list(session=session, purpose=purpose, list_id=list_id)


def signing_keys(hub: Hub) -> list[SigningKey]:
    """Every signing key, oldest first (public halves and dates only are meant for display)."""
    with hub.sessions() as session:
        keys = KeyRing(issuer_did=hub.issuer_did).keys(session=session)
        session.expunge_all()
        return keys


def rotate_key(hub: Hub) -> SigningKey:
    """Make a new active key (the old one keeps verifying) and re-sign the status lists."""
    ring = KeyRing(issuer_did=hub.issuer_did)
    now = hub.now()
    with hub.sessions.begin() as session:
        key = ring.rotate(session=session, kek=hub.kek, now=now)
        _publish(hub, session, ring, now)
        session.expunge(key)
    return key


def retire_key(hub: Hub, kid: str) -> SigningKey:
    """Retire a rotated-out key; the status lists are re-signed so none is left under it."""
    ring = KeyRing(issuer_did=hub.issuer_did)
    now = hub.now()
    with hub.sessions.begin() as session:
        key = ring.retire(kid, session=session, now=now)
        _publish(hub, session, ring, now)
        session.expunge(key)
    return key


def _publish(
    hub: Hub, session: Session, ring: KeyRing, now: dt.datetime
) -> tuple[status_list.PublishedList, ...]:
    signer = ring.signer(session=session, kek=hub.kek, now=now)
    return tuple(
        status_list.publish(session=session, signer=signer, issuer_did=hub.issuer_did, now=now)
    )
