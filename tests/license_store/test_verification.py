"""verify_credential / verify_file: issuer binding, validity period, codes; offline key files."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from license_store import ed25519
from license_store.credential import build_credential, end_of_day, start_of_day
from license_store.did import did_document, did_key_of, did_key_verification_method, jwks
from license_store.error import KeyFormatError, VerificationError
from license_store.key_set import KeySet
from license_store.proof import create_proof
from license_store.record import LicenseRecord
from license_store.signer import Ed25519Signer
from license_store.verification import verify_credential, verify_file

HUB = "did:web:onehub.gd.gov.cn"
LICENSE_ID = "1.2.156.3005.2.11440000000000050C001.11440000000000050C.0000000001.001.K"
SIGNED_AT = dt.datetime(2026, 11, 27, 2, 0, tzinfo=dt.UTC)
PRIVATE = ed25519.private_key_from_seed(bytes(range(32)))
HUB_SIGNER = Ed25519Signer(PRIVATE, verification_method=f"{HUB}#k1")
HUB_KEYS = KeySet.from_keys(HUB, {"k1": PRIVATE.public_key()})


def _signed(
    record: LicenseRecord, signer: Ed25519Signer = HUB_SIGNER, issuer: str = HUB
) -> dict[str, Any]:
    credential = build_credential(record, license_id=LICENSE_ID, issuer_did=issuer)
    return create_proof(credential, signer=signer, created=SIGNED_AT)


def _code(credential: Any, keys: KeySet = HUB_KEYS, now: dt.datetime = SIGNED_AT) -> str:
    with pytest.raises(VerificationError) as caught:
        verify_credential(credential, keys=keys, now=now)
    return caught.value.code


def test_validity_period_uses_beijing_calendar_days(make_record: Any) -> None:
    record = dataclasses.replace(
        make_record(1), valid_from=dt.date(2026, 1, 1), valid_until=dt.date(2026, 12, 31)
    )
    signed = _signed(record)
    assert (signed["validFrom"], signed["validUntil"]) == (
        "2025-12-31T16:00:00Z",
        "2026-12-31T15:59:59Z",
    )
    start, end = start_of_day(dt.date(2026, 1, 1)), end_of_day(dt.date(2026, 12, 31))
    verified = verify_credential(signed, keys=HUB_KEYS, now=start)
    assert (verified.valid_from, verified.valid_until) == (start, end)
    assert verified.license_id == LICENSE_ID and verified.issuer == HUB and verified.status is None
    verify_credential(signed, keys=HUB_KEYS, now=end)
    assert _code(signed, now=start - dt.timedelta(seconds=1)) == "not_yet_valid"
    assert _code(signed, now=end + dt.timedelta(seconds=1)) == "expired"
    assert "idNumber" not in repr(verified)


def test_issuer_must_control_the_key(make_record: Any) -> None:
    # A did:key signer claiming to be the hub: the signature is sound, the claim is not.
    impostor_key = ed25519.private_key_from_seed(b"\x09" * 32)
    impostor = Ed25519Signer(
        impostor_key, verification_method=did_key_verification_method(impostor_key.public_key())
    )
    forged = _signed(make_record(1), signer=impostor, issuer=HUB)
    assert _code(forged, keys=HUB_KEYS.merged(KeySet.did_key())) == "issuer_mismatch"
    # A self-issued did:key credential verifies only when did:key is allowed, naming itself.
    own = _signed(make_record(1), signer=impostor, issuer=did_key_of(impostor_key.public_key()))
    assert _code(own) == "unknown_key"
    verified = verify_credential(own, keys=KeySet.did_key(), now=SIGNED_AT)
    assert verified.issuer == did_key_of(impostor_key.public_key())


def test_w3c_vector_verifies_but_is_not_bound_to_its_https_issuer(make_record: Any) -> None:
    signed = json.loads(
        (
            Path(__file__).parents[1] / "vectors" / "vc_di_eddsa_jcs_2022" / "signedJCS.json"
        ).read_bytes()
    )
    # Its issuer is an https URL while its key is a did:key: the proof holds, but nothing offline
    # ties that key to that issuer, and the result says so.
    verified = verify_credential(signed, keys=KeySet.did_key(), now=SIGNED_AT)
    assert verified.issuer == "https://vc.example/issuers/5678"
    assert verified.issuer_bound is False
    ours = verify_credential(_signed(make_record(1)), keys=HUB_KEYS, now=SIGNED_AT)
    assert ours.issuer_bound is True


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda c: c.pop("proof"), "malformed"),
        (
            lambda c: c.update({"@context": ["https://www.w3.org/2018/credentials/v1"]}),
            "bad_signature",
        ),
        (lambda c: c["credentialSubject"].update({"licenseNumber": "X"}), "bad_signature"),
        (
            lambda c: c["proof"].update({"cryptosuite": "eddsa-rdfc-2022"}),
            "unsupported_cryptosuite",
        ),
        (lambda c: c["proof"].update({"verificationMethod": f"{HUB}#k2"}), "unknown_key"),
        (lambda c: c.update({"validUntil": "soon"}), "bad_signature"),
    ],
)
def test_codes(make_record: Any, change: Any, code: str) -> None:
    signed = _signed(make_record(1))
    change(signed)
    assert _code(signed) == code


def test_unsigned_but_malformed_shapes_are_refused_after_the_proof(make_record: Any) -> None:
    record = make_record(1)
    credential = build_credential(record, license_id=LICENSE_ID, issuer_did=HUB)
    credential["@context"] = ["https://example.org/not-vc"]
    assert _code(create_proof(credential, signer=HUB_SIGNER, created=SIGNED_AT)) == "malformed"
    credential = build_credential(record, license_id=LICENSE_ID, issuer_did=HUB)
    credential["validFrom"] = "2026-01-01"
    assert _code(create_proof(credential, signer=HUB_SIGNER, created=SIGNED_AT)) == "malformed"
    assert _code(["not", "a", "dict"]) == "malformed"
    with pytest.raises(Exception, match="aware"):
        verify_credential(_signed(record), keys=HUB_KEYS, now=dt.datetime(2026, 1, 1))


def test_verify_file_offline_with_a_did_document(make_record: Any, tmp_path: Path) -> None:
    credential_file = tmp_path / "license.json"
    credential_file.write_text(json.dumps(_signed(make_record(1)), ensure_ascii=False, indent=2))
    did_file = tmp_path / "did.json"
    did_file.write_text(json.dumps(did_document(HUB, {"k1": PRIVATE.public_key()})))
    verified = verify_file(credential_file, keys=KeySet.from_file(did_file), now=SIGNED_AT)
    assert verified.verification_method == f"{HUB}#k1"
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(jwks({"k1": PRIVATE.public_key()})))
    with pytest.raises(KeyFormatError):
        KeySet.from_file(jwks_file)
    verify_file(credential_file, keys=KeySet.from_file(jwks_file, controller=HUB), now=SIGNED_AT)


@pytest.mark.parametrize(
    "content",
    [
        b'{"a": 1, "a": 1}',
        b"not json",
        b"[1, 2]",
        b'{"x": "' + b"y" * (300 * 1024) + b'"}',
    ],
)
def test_verify_file_refuses_bad_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(VerificationError) as caught:
        verify_file(path, keys=HUB_KEYS, now=SIGNED_AT)
    assert caught.value.code == "malformed"
