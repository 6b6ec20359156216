"""Issuer signing keys: created, rotated and retired in the DB, private halves under a KEK."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog_schemas.cipher import FieldCipher
from catalog_schemas.errors import OneHubError
from license_store import did, ed25519
from license_store.error import ConcurrentIssuanceError, KeyFormatError, SigningKeyError
from license_store.key_set import KeySet, RetiredKey
from license_store.model import KEY_ACTIVE, KEY_RETIRED, KEY_ROTATED, SigningKey
from license_store.signer import Ed25519Signer

logger = logging.getLogger(__name__)

# The one KEK is named in every token, so a later KEK rotation can tell old tokens apart.
KEK_ID: Final = "kek1"


class KeyRing:
    """The signing keys of one issuer DID; verification methods are ``<issuer_did>#<kid>``."""

    def __init__(self, *, issuer_did: str) -> None:
        if not issuer_did.startswith("did:"):
            raise KeyFormatError(f"issuer must be a DID, not {issuer_did!r}")
        self.issuer_did = issuer_did

    def verification_method(self, kid: str) -> str:
        """Return the DID URL of one key."""
        return f"{self.issuer_did}#{kid}"

    def active_key(self, *, session: Session) -> SigningKey | None:
        """Return the active key, if there is one."""
        return session.scalars(select(SigningKey).where(SigningKey.status == KEY_ACTIVE)).first()

    def ensure_active_key(self, *, session: Session, kek: bytes, now: dt.datetime) -> SigningKey:
        """Return the active key, creating one if there is none."""
        key = self.active_key(session=session)
        if key is not None:
            return key
        try:
            # A savepoint, so losing a race to another process only undoes our insert.
            with session.begin_nested():
                key = self._new_key(session=session, kek=kek, now=now)
        except IntegrityError:
            key = self.active_key(session=session)
            if key is None:
                raise ConcurrentIssuanceError("could not create or find an active key") from None
        return key

    def rotate(self, *, session: Session, kek: bytes, now: dt.datetime) -> SigningKey:
        """Make a new active key; the previous one stops signing but keeps verifying."""
        current = self.active_key(session=session)
        if current is not None:
            self._swap(current.kid, KEY_ACTIVE, KEY_ROTATED, session=session, rotated_at=now)
            logger.info("rotated out signing key %s", current.kid)
        return self._new_key(session=session, kek=kek, now=now)

    def retire(self, kid: str, *, session: Session, now: dt.datetime) -> SigningKey:
        """Stop trusting a rotated-out key: what it signed is reported as signed by a retired key.

        The active key cannot be retired; rotate first, so the hub is never left without one.
        """
        key = session.get(SigningKey, kid)
        if key is None:
            raise SigningKeyError(f"no signing key {kid!r}")
        if key.status == KEY_RETIRED:
            return key
        if key.status == KEY_ACTIVE:
            raise SigningKeyError(
                f"key {kid!r} is the active key; run `onehub keys rotate` first, then retire it"
            )
        self._swap(kid, KEY_ROTATED, KEY_RETIRED, session=session, retired_at=now)
        logger.info("retired signing key %s", kid)
        return key

    def keys(self, *, session: Session) -> list[SigningKey]:
        """Return every key, oldest first."""
        return list(
            session.scalars(select(SigningKey).order_by(SigningKey.created_at, SigningKey.kid))
        )

    def _swap(
        self, kid: str, old: str, new: str, *, session: Session, **stamps: dt.datetime
    ) -> None:
        # Compare-and-swap on the status: two concurrent rotations cannot both demote one key.
        result = session.execute(
            update(SigningKey)
            .where(SigningKey.kid == kid, SigningKey.status == old)
            .values(status=new, **stamps)
            .execution_options(synchronize_session="fetch")
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise ConcurrentIssuanceError(f"key {kid!r} changed status concurrently")

    def signer(self, *, session: Session, kek: bytes, now: dt.datetime) -> Ed25519Signer:
        """Return a signer for the active key (created if there is none)."""
        return self.signer_for(self.ensure_active_key(session=session, kek=kek, now=now), kek=kek)

    def signer_for(self, key: SigningKey, *, kek: bytes) -> Ed25519Signer:
        """Decrypt one key's private half and return a signer for it."""
        if key.status != KEY_ACTIVE:
            raise SigningKeyError(f"key {key.kid!r} is {key.status}; only the active key signs")
        if key.algorithm != ed25519.ALGORITHM:
            raise SigningKeyError(f"key {key.kid!r} uses {key.algorithm}, not Ed25519")
        try:
            seed = _kek_cipher(kek).decrypt(key.private_key_enc, aad=key.kid)
        except OneHubError:
            raise SigningKeyError(f"cannot decrypt key {key.kid!r} with this KEK") from None
        private_key = ed25519.private_key_from_seed(seed)
        if ed25519.public_bytes(private_key.public_key()) != key.public_key:
            raise SigningKeyError(f"key {key.kid!r}: private and public halves do not match")
        return Ed25519Signer(private_key, verification_method=self.verification_method(key.kid))

    def public_keys(self, *, session: Session) -> dict[str, Ed25519PublicKey]:
        """Return the keys that verify (active and rotated), oldest first, by kid."""
        return {
            k.kid: ed25519.public_key_from_bytes(k.public_key)
            for k in self.keys(session=session)
            if k.status != KEY_RETIRED
        }

    def retired_keys(self, *, session: Session) -> dict[str, RetiredKey]:
        """Return the retired keys by kid, with when they were retired."""
        return {
            k.kid: RetiredKey(ed25519.public_key_from_bytes(k.public_key), k.retired_at)
            for k in self.keys(session=session)
            if k.status == KEY_RETIRED
        }

    def key_set(self, *, session: Session) -> KeySet:
        """Return the key set a verifier of this issuer's licenses trusts (retired keys marked)."""
        return KeySet.from_keys(
            self.issuer_did,
            self.public_keys(session=session),
            retired=self.retired_keys(session=session),
        )

    def did_document(self, *, session: Session) -> dict[str, Any]:
        """Return the issuer's did:web document (retired keys listed with ``revoked``)."""
        return did.did_document(
            self.issuer_did,
            self.public_keys(session=session),
            retired={
                kid: (key.public_key, key.retired_at)
                for kid, key in self.retired_keys(session=session).items()
            },
        )

    def jwks(self, *, session: Session) -> dict[str, Any]:
        """Return the issuer's JWK Set (the keys that verify; a JWKS cannot mark a key retired)."""
        return did.jwks(self.public_keys(session=session))

    def _new_key(self, *, session: Session, kek: bytes, now: dt.datetime) -> SigningKey:
        private_key = ed25519.generate()
        public_key = private_key.public_key()
        kid = did.jwk_thumbprint(public_key)
        key = SigningKey(
            kid=kid,
            algorithm=ed25519.ALGORITHM,
            public_key=ed25519.public_bytes(public_key),
            # AES-256-GCM under the KEK, bound to the kid: a token moved to another row fails.
            private_key_enc=_kek_cipher(kek).encrypt(ed25519.seed_of(private_key), aad=kid),
            status=KEY_ACTIVE,
            created_at=now,
            rotated_at=None,
            retired_at=None,
        )
        session.add(key)
        session.flush()
        logger.info("created signing key %s", kid)
        return key


def _kek_cipher(kek: bytes) -> FieldCipher:
    return FieldCipher({KEK_ID: kek}, KEK_ID)
