"""Reading the license store: licenses by id and by holder, decrypted credentials, cursors."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog_schemas.errors import FatalError
from license_store.canonical import parse_json
from license_store.error import ConcurrentIssuanceError, CursorMovedBackError, LicenseNotFoundError
from license_store.model import SUPERSEDED, IssuanceCursor, License, LicenseHolder


class Cipher(Protocol):
    """Authenticated encryption of one field (catalog_schemas.cipher.FieldCipher fits)."""

    def encrypt(self, plaintext: str | bytes, *, aad: str) -> str:
        """Return a token holding the ciphertext, bound to ``aad``."""
        ...

    def decrypt(self, token: str, *, aad: str) -> bytes:
        """Return the plaintext of a token made with the same ``aad``."""
        ...


@runtime_checkable
class BatchCipher(Cipher, Protocol):
    """A Cipher that seals a batch at once (FieldCipher does)."""

    def encrypt_batch(self, plaintexts: Iterable[bytes], aads: Sequence[str]) -> list[bytes]:
        """Return the tokens (ASCII bytes) of many plaintexts, each bound to its own aad."""
        ...


def get_license(*, session: Session, license_id: str) -> License:
    """Return one license version by identifier, or raise LicenseNotFoundError."""
    found = session.get(License, license_id)
    if found is None:
        raise LicenseNotFoundError("no license has this identifier")
    return found


def current_license(*, session: Session, record_key: str) -> License | None:
    """Return the latest version of a record's license, whatever its status."""
    return session.scalars(
        select(License)
        .where(License.record_key == record_key)
        .order_by(License.version.desc())
        .limit(1)
    ).first()


def licenses_for_holder(
    *, session: Session, holder_key: str, include_superseded: bool = False
) -> list[License]:
    """Return the licenses a holder appears on (through the holder_key index)."""
    query = (
        select(License)
        .join(LicenseHolder, LicenseHolder.license_id == License.license_id)
        .where(LicenseHolder.holder_key == holder_key)
        .order_by(License.license_type, License.record_key, License.version)
        .distinct()
    )
    if not include_superseded:
        query = query.where(License.status != SUPERSEDED)
    return list(session.scalars(query))


def credential_of(license: License, cipher: Cipher) -> dict[str, Any]:
    """Decrypt and return the signed credential of a license."""
    credential = parse_json(cipher.decrypt(license.credential_enc, aad=license.license_id))
    if not isinstance(credential, dict):
        raise FatalError("stored credential is not a JSON object")
    return credential


def get_cursor(*, session: Session, name: str) -> int | None:
    """Return the version an issuance cursor has reached, or None if it never moved."""
    cursor = session.get(IssuanceCursor, name)
    return None if cursor is None else cursor.version


def set_cursor(*, session: Session, name: str, version: int, now: dt.datetime) -> None:
    """Move a cursor forward in the caller's transaction (commit it with the licenses)."""
    cursor = session.get(IssuanceCursor, name, with_for_update=True)
    if cursor is None:
        session.add(IssuanceCursor(name=name, version=version, updated_at=now))
        try:
            session.flush()
        except IntegrityError:
            raise ConcurrentIssuanceError("another process created this cursor first") from None
        return
    if version < cursor.version:
        raise CursorMovedBackError(
            f"cursor {name!r} is at {cursor.version}; refusing to move it back to {version}"
        )
    cursor.version = version
    cursor.updated_at = now
    session.flush()
