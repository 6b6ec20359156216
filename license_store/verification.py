"""Verifying a presented e-license: proof, issuer, status in the store, and validity period."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog_schemas.errors import OneHubError, ValidationFailedError
from license_store.canonical import MAX_JSON_BYTES, parse_json
from license_store.credential import VC_CONTEXT, license_id_of
from license_store.did import controller_of
from license_store.error import VerificationError
from license_store.key_set import KeySet
from license_store.model import (
    NATIONAL_STATUS,
    SUPERSEDED,
    VALID,
    License,
    LicenseStatusChange,
)
from license_store.proof import verify_proof
from license_store.timestamp import format_timestamp, parse_timestamp

if TYPE_CHECKING:  # status_list imports this module to verify list credentials
    from license_store.status_list import StatusLists

MAX_CREDENTIAL_BYTES: Final = 256 * 1024


@dataclass(frozen=True)
class VerifiedLicense:
    """A credential whose proof, issuer, validity period and (if asked) status all checked out."""

    license_id: str | None
    issuer: str
    verification_method: str
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None
    created: dt.datetime | None
    status: str | None
    # False when the issuer is not a DID, so the key could not be tied to it offline.
    issuer_bound: bool
    # Holds the holders' ID numbers: kept out of repr so it never lands in a log by accident.
    credential: Mapping[str, Any] = field(repr=False)
    # The status-list purposes checked (revocation, suspension); empty if no list was at hand.
    status_checked: tuple[str, ...] = ()


def verify_credential(
    credential: Mapping[str, Any],
    *,
    keys: KeySet,
    now: dt.datetime,
    session: Session | None = None,
    status_lists: StatusLists | None = None,
) -> VerifiedLicense:
    """Verify an e-license; raise VerificationError with a code on any failure.

    Order: proof, shape, issuer binding, retired key; then with ``session`` the status in this
    store (it must be ``valid``), with ``status_lists`` the revocation and suspension bits of its
    ``credentialStatus``; last the validity period against ``now``.
    """
    if now.utcoffset() is None:
        raise ValidationFailedError("now must be an aware datetime")
    if not isinstance(credential, Mapping):
        raise VerificationError("malformed")
    verify_proof(credential, resolve_key=keys)
    _check_shape(credential)
    proof = credential["proof"]
    method: str = proof["verificationMethod"]
    issuer = _issuer_id(credential.get("issuer"))
    # The key must belong to the issuer the credential names, or anyone could sign as the hub.
    # An issuer named by a DID is checked offline; an issuer named by an https URL (as in the
    # W3C test vector) cannot be tied to a key offline, so the result says it is not bound.
    issuer_bound = issuer.startswith("did:")
    if issuer_bound and controller_of(method) != issuer:
        raise VerificationError("issuer_mismatch")
    if keys.is_retired(method):
        # Checked after the signature: only a real signature by that key is reported as such.
        retired_at = keys.retired_at(method)
        when = f" on {format_timestamp(retired_at)}" if retired_at else ""
        raise VerificationError(
            "retired_key", f"signed by {method}, a key its issuer retired{when}"
        )
    license_id = license_id_of(credential.get("id"))
    status = None
    if session is not None:
        status = _stored_status(session, license_id)
    checked: tuple[str, ...] = ()
    if status_lists is not None:
        checked = status_lists.check(credential, issuer=issuer)
    valid_from = _time(credential, "validFrom")
    valid_until = _time(credential, "validUntil")
    expires = _time(proof, "expires")
    if valid_from is not None and now < valid_from:
        raise VerificationError("not_yet_valid")
    if (valid_until is not None and now > valid_until) or (expires is not None and now > expires):
        raise VerificationError("expired")
    return VerifiedLicense(
        license_id=license_id,
        issuer=issuer,
        verification_method=method,
        valid_from=valid_from,
        valid_until=valid_until,
        created=_time(proof, "created"),
        status=status,
        issuer_bound=issuer_bound,
        credential=credential,
        status_checked=checked,
    )


def verify_file(
    path: Path | str,
    *,
    keys: KeySet,
    now: dt.datetime,
    session: Session | None = None,
    status_lists: StatusLists | None = None,
) -> VerifiedLicense:
    """Read a credential JSON file (bounded in size) and verify it like verify_credential."""
    path = Path(path)
    if path.stat().st_size > MAX_CREDENTIAL_BYTES:
        raise VerificationError("malformed", "credential file is too large")
    try:
        credential = parse_json(
            path.read_bytes(), max_bytes=min(MAX_CREDENTIAL_BYTES, MAX_JSON_BYTES)
        )
    except OneHubError:
        raise VerificationError("malformed", "credential file is not strict JSON") from None
    if not isinstance(credential, dict):
        raise VerificationError("malformed")
    return verify_credential(
        credential, keys=keys, now=now, session=session, status_lists=status_lists
    )


def _check_shape(credential: Mapping[str, Any]) -> None:
    context = credential.get("@context")
    if not isinstance(context, list) or not context or context[0] != VC_CONTEXT:
        raise VerificationError("malformed", "not a VC 2.0 credential (@context)")
    types = credential.get("type")
    if not isinstance(types, list) or "VerifiableCredential" not in types:
        raise VerificationError("malformed", "credential type lacks VerifiableCredential")
    if "credentialSubject" not in credential:
        raise VerificationError("malformed", "credential has no credentialSubject")


def _issuer_id(issuer: object) -> str:
    if isinstance(issuer, Mapping):
        issuer = issuer.get("id")
    if not isinstance(issuer, str) or not issuer:
        raise VerificationError("malformed", "credential has no issuer id")
    return issuer


def _time(document: Mapping[str, Any], name: str) -> dt.datetime | None:
    if name not in document:
        return None
    try:
        return parse_timestamp(document[name])
    except ValidationFailedError:
        raise VerificationError("malformed", f"{name} is not a dateTimeStamp") from None


def _stored_status(session: Session, license_id: str | None) -> str:
    found = None if license_id is None else session.get(License, license_id)
    if found is None:
        raise VerificationError("unknown_license")
    if found.status == VALID:
        return found.status
    since = f" since {format_timestamp(found.status_changed_at)}" if found.status_changed_at else ""
    if found.status == SUPERSEDED:
        newer = session.scalars(
            select(License.license_id)
            .where(License.record_key == found.record_key, License.version > found.version)
            .order_by(License.version.desc())
            .limit(1)
        ).first()
        raise VerificationError(
            SUPERSEDED,
            f"signature valid, but version {found.version} was superseded{since}"
            + (f" by {newer}" if newer else ""),
        )
    reason = session.scalars(
        select(LicenseStatusChange.reason)
        .where(LicenseStatusChange.license_id == found.license_id)
        .order_by(LicenseStatusChange.seq.desc())
        .limit(1)
    ).first()
    national = NATIONAL_STATUS.get(found.status, "")
    raise VerificationError(
        found.status,
        f"signature valid, but the license is {found.status} ({national}){since}"
        + (f": {reason}" if reason else ""),
    )
