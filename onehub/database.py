"""Hub database set-up and the issuer's keys, built from a Hub (composition root)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from catalog_schemas.errors import ValidationFailedError
from exchange.hub import Hub
from exchange.model import metadata as exchange_metadata
from license_store.key import KeyRing
from license_store.model import Base as LicenseBase
from license_store.signer import Signer
from quality.quarantine import metadata as quarantine_metadata


def create_schema(engine: sa.Engine) -> None:
    """Create every hub table that does not exist yet (idempotent)."""
    for metadata in (exchange_metadata, LicenseBase.metadata, quarantine_metadata):
        metadata.create_all(engine)


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
