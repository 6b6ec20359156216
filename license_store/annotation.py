"""Annotated copies (加注件): a license re-signed for one use at one counter, until a date.

An annotated copy is a credential of its own, issued by the hub, whose subject embeds the signed
license unchanged and binds it to a purpose (用证事由), a service item, the consumer that asked
for it and an expiry: "only for handling <item>, valid until <date>". Its proof covers the
embedded license too, so no part of either can be changed. :func:`verify_annotated` checks the
copy, the embedded license, and that the copy is presented for the item it was made for.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy.orm import Session

from catalog_schemas.errors import ValidationFailedError
from license_store.credential import CHINA_TIME, ISSUER_NAME, VC_CONTEXT, license_id_of
from license_store.did import controller_of
from license_store.error import AnnotationError, VerificationError
from license_store.key_set import KeySet
from license_store.proof import create_proof
from license_store.signer import Signer
from license_store.timestamp import format_timestamp, parse_timestamp
from license_store.verification import VerifiedLicense, verify_credential

if TYPE_CHECKING:
    from license_store.status_list import StatusLists

ANNOTATED_TYPE: Final = "AnnotatedELicense"
MAX_PURPOSE_CHARS: Final = 500
MAX_NAME_CHARS: Final = 256
# An annotated copy is for one visit to a counter, not a second license.
MAX_LIFETIME: Final = dt.timedelta(days=366)
_CODE: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")


@dataclass(frozen=True)
class VerifiedAnnotation:
    """An annotated copy that checked out, with the license inside it."""

    copy_id: str
    purpose: str
    service_item: str
    consumer: str
    valid_until: dt.datetime
    license: VerifiedLicense
    # Holds the holders' ID numbers: kept out of repr.
    credential: Mapping[str, Any] = field(repr=False)


def annotate(
    *,
    credential: Mapping[str, Any],
    purpose: str,
    service_item: str,
    consumer: str,
    expires: dt.datetime,
    signer: Signer,
    now: dt.datetime,
    service_item_name: str | None = None,
    issuer_name: str = ISSUER_NAME,
    copy_id: str | None = None,
) -> dict[str, Any]:
    """Return a signed annotated copy of a signed license, bound to one use until ``expires``.

    The hub annotates only its own licenses (the signer's DID must be the license's issuer),
    and a copy never outlives the license it carries. The license is embedded as it is; check
    it (:func:`~license_store.verification.verify_credential`) before annotating it.
    """
    for moment, name in ((now, "now"), (expires, "expires")):
        if moment.utcoffset() is None:
            raise ValidationFailedError(f"{name} must be an aware datetime")
    _text(purpose, "purpose", MAX_PURPOSE_CHARS)
    _text(consumer, "consumer", MAX_NAME_CHARS)
    if not isinstance(service_item, str) or not _CODE.fullmatch(service_item):
        raise AnnotationError("service_item must be a catalog code")
    if service_item_name is not None:
        _text(service_item_name, "service_item_name", MAX_NAME_CHARS)
    if not isinstance(credential, Mapping) or "proof" not in credential:
        raise AnnotationError("only a signed license can be annotated")
    if ANNOTATED_TYPE in (credential.get("type") or []):
        raise AnnotationError("an annotated copy cannot be annotated again")
    try:
        issuer = _issuer_id(credential)
    except VerificationError:
        raise AnnotationError("the license names no issuer") from None
    issuer_did = controller_of(signer.verification_method)
    if issuer != issuer_did:
        raise AnnotationError("the hub annotates only licenses it issued itself")
    expires = expires.replace(microsecond=0)
    if expires <= now:
        raise AnnotationError("an annotated copy must expire after it is made")
    if expires - now > MAX_LIFETIME:
        raise AnnotationError(f"an annotated copy lives at most {MAX_LIFETIME.days} days")
    license_until = _time(credential.get("validUntil"))
    if license_until is not None and expires > license_until:
        raise AnnotationError("an annotated copy cannot outlive the license it carries")
    item = service_item_name or service_item
    until_day = expires.astimezone(CHINA_TIME).date().isoformat()
    unsigned: dict[str, Any] = {
        "@context": [VC_CONTEXT],
        "id": copy_id or f"urn:uuid:{uuid.uuid4()}",
        "type": ["VerifiableCredential", ANNOTATED_TYPE],
        "issuer": {"id": issuer_did, "name": issuer_name},
        "name": "电子证照加注件",
        "validFrom": format_timestamp(now),
        "validUntil": format_timestamp(expires),
        "credentialSubject": {
            "annotation": f"仅用于办理“{item}”，有效期至{until_day}",
            "annotationEn": f"Only for handling {item}; valid until {until_day}",
            "purpose": purpose,
            "serviceItem": service_item,
            **({"serviceItemName": service_item_name} if service_item_name else {}),
            "consumer": consumer,
            "license": dict(credential),
        },
    }
    return create_proof(unsigned, signer=signer, created=now)


def verify_annotated(
    copy: Mapping[str, Any],
    *,
    keys: KeySet,
    now: dt.datetime,
    service_item: str,
    consumer: str | None = None,
    session: Session | None = None,
    status_lists: StatusLists | None = None,
) -> VerifiedAnnotation:
    """Verify an annotated copy presented for ``service_item`` (and, if given, ``consumer``).

    Raises VerificationError: ``expired`` after the copy's expiry, ``wrong_service_item`` or
    ``wrong_consumer`` for another use, ``not_annotated`` for a plain license, or whatever the
    embedded license fails with (its status in ``session`` / ``status_lists`` included).
    """
    outer = verify_credential(copy, keys=keys, now=now)
    types = copy.get("type")
    subject = copy.get("credentialSubject")
    if not isinstance(types, list) or ANNOTATED_TYPE not in types:
        raise VerificationError("not_annotated", "this is not an annotated copy")
    if not isinstance(subject, Mapping) or not isinstance(subject.get("license"), Mapping):
        raise VerificationError("malformed", "annotated copy carries no license")
    if outer.valid_until is None:
        raise VerificationError("malformed", "annotated copy has no expiry")
    bound_item = subject.get("serviceItem")
    bound_consumer = subject.get("consumer")
    purpose = subject.get("purpose")
    if not all(isinstance(v, str) for v in (bound_item, bound_consumer, purpose)):
        raise VerificationError("malformed", "annotated copy lacks purpose, item or consumer")
    if bound_item != service_item:
        raise VerificationError(
            "wrong_service_item", f"this copy is only for handling {bound_item}"
        )
    if consumer is not None and bound_consumer != consumer:
        raise VerificationError("wrong_consumer", "this copy was made for another consumer")
    inner = subject["license"]
    if _issuer_id(inner) != outer.issuer:
        raise VerificationError("issuer_mismatch", "the copy and its license have other issuers")
    verified = verify_credential(
        inner, keys=keys, now=now, session=session, status_lists=status_lists
    )
    return VerifiedAnnotation(
        copy_id=str(copy.get("id")),
        purpose=str(purpose),
        service_item=str(bound_item),
        consumer=str(bound_consumer),
        valid_until=outer.valid_until,
        license=verified,
        credential=copy,
    )


def annotated_license_id(copy: Mapping[str, Any]) -> str | None:
    """Return the identifier of the license inside an annotated copy (None if there is none)."""
    subject = copy.get("credentialSubject")
    inner = subject.get("license") if isinstance(subject, Mapping) else None
    return license_id_of(inner.get("id")) if isinstance(inner, Mapping) else None


def _text(value: object, name: str, max_chars: int) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > max_chars:
        raise AnnotationError(f"{name} must be a non-empty string of at most {max_chars} chars")


def _issuer_id(credential: Mapping[str, Any]) -> str:
    issuer = credential.get("issuer")
    if isinstance(issuer, Mapping):
        issuer = issuer.get("id")
    if not isinstance(issuer, str):
        raise VerificationError("malformed", "credential has no issuer id")
    return issuer


def _time(value: object) -> dt.datetime | None:
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except ValidationFailedError:
        raise AnnotationError("the license's validUntil is not a dateTimeStamp") from None
