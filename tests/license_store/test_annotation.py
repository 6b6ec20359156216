"""Annotated copies (加注件): bound to a purpose, a service item, a consumer and an expiry."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.orm import Session

from catalog_schemas.cipher import FieldCipher
from license_store import ed25519
from license_store.annotation import annotate, annotated_license_id, verify_annotated
from license_store.credential import build_credential
from license_store.error import AnnotationError, VerificationError
from license_store.issuance import issue
from license_store.key import KeyRing
from license_store.key_set import KeySet
from license_store.proof import create_proof
from license_store.record import LicenseRecord
from license_store.signer import Ed25519Signer
from license_store.status import revoke
from license_store.store import credential_of, get_license

HUB = "did:web:onehub.gd.gov.cn"
LICENSE_ID = "1.2.156.3005.2.11440000000000050C001.11440000000000050C.0000000001.001.K"
NOW = dt.datetime(2026, 11, 27, 2, 0, tzinfo=dt.UTC)
PRIVATE = ed25519.private_key_from_seed(bytes(range(32)))
SIGNER = Ed25519Signer(PRIVATE, verification_method=f"{HUB}#k1")
KEYS = KeySet.from_keys(HUB, {"k1": PRIVATE.public_key()})
ITEM = "talent_household_registration"
MakeRecord = Callable[..., LicenseRecord]


def _license(record: LicenseRecord, signer: Ed25519Signer = SIGNER) -> dict[str, Any]:
    issuer = signer.verification_method.partition("#")[0]
    unsigned = build_credential(record, license_id=LICENSE_ID, issuer_did=issuer)
    return create_proof(unsigned, signer=signer, created=NOW)


def _annotate(credential: dict[str, Any], **changes: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "credential": credential,
        "purpose": "办理人才引进落户",
        "service_item": ITEM,
        "consumer": "tianhe-counter-3",
        "expires": NOW + dt.timedelta(days=3, hours=5),
        "signer": SIGNER,
        "now": NOW,
        "service_item_name": "人才引进落户",
        **changes,
    }
    return annotate(**arguments)


def _code(copy: dict[str, Any], **arguments: Any) -> str:
    with pytest.raises(VerificationError) as caught:
        verify_annotated(copy, **{"keys": KEYS, "now": NOW, "service_item": ITEM, **arguments})
    return caught.value.code


def test_a_copy_says_what_it_is_for_and_verifies_for_that(make_record: MakeRecord) -> None:
    license = _license(make_record(1))
    copy = _annotate(license)
    subject = copy["credentialSubject"]
    assert copy["type"] == ["VerifiableCredential", "AnnotatedELicense"]
    assert copy["validFrom"] == "2026-11-27T02:00:00Z"
    assert copy["validUntil"] == "2026-11-30T07:00:00Z"
    # 2026-11-30 07:00 UTC is 15:00 the same day in Beijing.
    assert subject["annotation"] == "仅用于办理“人才引进落户”，有效期至2026-11-30"
    assert subject["annotationEn"] == "Only for handling 人才引进落户; valid until 2026-11-30"
    assert (subject["purpose"], subject["serviceItem"], subject["consumer"]) == (
        "办理人才引进落户",
        ITEM,
        "tianhe-counter-3",
    )
    assert subject["license"] == license  # embedded unchanged, with its own proof
    assert annotated_license_id(copy) == LICENSE_ID
    verified = verify_annotated(copy, keys=KEYS, now=NOW + dt.timedelta(days=3), service_item=ITEM)
    assert verified.license.license_id == LICENSE_ID
    assert (verified.purpose, verified.consumer) == ("办理人才引进落户", "tianhe-counter-3")
    assert verified.valid_until == dt.datetime(2026, 11, 30, 7, 0, tzinfo=dt.UTC)
    verify_annotated(copy, keys=KEYS, now=NOW, service_item=ITEM, consumer="tianhe-counter-3")


def test_a_copy_fails_after_its_expiry_or_for_another_use(make_record: MakeRecord) -> None:
    copy = _annotate(_license(make_record(1)))
    after = dt.datetime(2026, 11, 30, 7, 0, 1, tzinfo=dt.UTC)
    assert _code(copy, now=after) == "expired"
    assert _code(copy, now=NOW - dt.timedelta(seconds=1)) == "not_yet_valid"
    assert _code(copy, service_item="housing_provident_withdrawal") == "wrong_service_item"
    assert _code(copy, consumer="yuexiu-counter-1") == "wrong_consumer"
    # A plain license is not an annotated copy, whatever it is presented for.
    assert _code(_license(make_record(1))) == "not_annotated"


def test_the_license_inside_is_checked_too(
    session: Session,
    keyring: KeyRing,
    signer: Ed25519Signer,
    cipher: FieldCipher,
    make_record: MakeRecord,
) -> None:
    dca = "11440000000000050C"
    result = issue(
        session=session,
        records=[make_record(1)],
        signer=signer,
        cipher=cipher,
        issuer_did=keyring.issuer_did,
        type_codes={"marriage_certificate": dca + "001"},
        issuer_codes={"dca": dca},
        now=NOW,
    )
    license_id = result.issued[0].license_id
    license = credential_of(get_license(session=session, license_id=license_id), cipher)
    copy = _annotate(license, signer=signer)
    keys = keyring.key_set(session=session)
    verify_annotated(copy, keys=keys, now=NOW, service_item=ITEM, session=session)
    revoke(session=session, license_id=license_id, reason="r", actor="a", now=NOW)
    with pytest.raises(VerificationError) as caught:
        verify_annotated(copy, keys=keys, now=NOW, service_item=ITEM, session=session)
    assert caught.value.code == "revoked"


@pytest.mark.parametrize(
    "changes",
    [
        {"expires": NOW},  # not after it is made
        {"expires": NOW + dt.timedelta(days=400)},  # too long for one visit
        {"purpose": " "},
        {"consumer": ""},
        {"service_item": "Not A Code"},
        {"now": dt.datetime(2026, 11, 27)},  # naive
    ],
)
def test_refused_annotations(make_record: MakeRecord, changes: dict[str, Any]) -> None:
    with pytest.raises(Exception) as caught:
        _annotate(_license(make_record(1)), **changes)
    assert getattr(caught.value, "code", "") in {"annotation_invalid", "invalid_request"}


def test_only_own_signed_unannotated_licenses_outliving_the_copy(make_record: MakeRecord) -> None:
    other = Ed25519Signer(
        ed25519.private_key_from_seed(b"\x05" * 32), verification_method="did:web:other.hub#k"
    )
    with pytest.raises(AnnotationError, match="issued itself"):
        _annotate(_license(make_record(1), signer=other))
    unsigned = build_credential(make_record(1), license_id=LICENSE_ID, issuer_did=HUB)
    with pytest.raises(AnnotationError, match="signed"):
        _annotate(unsigned)
    with pytest.raises(AnnotationError, match="again"):
        _annotate(_annotate(_license(make_record(1))))
    ending = _license(make_record(1, valid_until=dt.date(2026, 11, 28)))
    with pytest.raises(AnnotationError, match="outlive"):
        _annotate(ending, expires=NOW + dt.timedelta(days=2))
    _annotate(ending, expires=NOW + dt.timedelta(days=1))
