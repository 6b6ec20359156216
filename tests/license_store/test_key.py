"""Signing keys on SQLite and PostgreSQL: creation, KEK encryption, rotation, publication."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog_schemas.cipher import DecryptionError, FieldCipher, generate_key
from license_store import ed25519
from license_store.credential import VC_CONTEXT
from license_store.did import jwk_thumbprint
from license_store.error import SigningKeyError, VerificationError
from license_store.key import KeyRing
from license_store.key_set import KeySet
from license_store.model import SigningKey, metadata
from license_store.proof import create_proof
from license_store.verification import verify_credential


def _credential(issuer_did: str) -> dict[str, object]:
    return {
        "@context": [VC_CONTEXT],
        "id": "urn:uuid:4f4a0b7e-0000-4000-8000-000000000001",
        "type": ["VerifiableCredential"],
        "issuer": issuer_did,
        "credentialSubject": {"name": "test"},
    }


def test_ensure_active_key_creates_once_and_encrypts_the_private_key(
    session: Session, engine: sa.Engine, keyring: KeyRing, kek: bytes, now: dt.datetime
) -> None:
    first = keyring.ensure_active_key(session=session, kek=kek, now=now)
    session.commit()
    again = keyring.ensure_active_key(session=session, kek=kek, now=now + dt.timedelta(days=1))
    assert again.kid == first.kid and first.status == "active" and first.created_at == now
    assert first.kid == jwk_thumbprint(ed25519.public_key_from_bytes(first.public_key))
    assert session.scalar(sa.select(sa.func.count()).select_from(SigningKey)) == 1
    signer = keyring.signer_for(first, kek=kek)
    assert signer.verification_method == f"{keyring.issuer_did}#{first.kid}"
    seed = FieldCipher({"kek1": kek}, "kek1").decrypt(first.private_key_enc, aad=first.kid)
    assert (
        ed25519.public_bytes(ed25519.private_key_from_seed(seed).public_key()) == first.public_key
    )
    with pytest.raises(DecryptionError):  # bound to its kid: a token moved to another row fails
        FieldCipher({"kek1": kek}, "kek1").decrypt(first.private_key_enc, aad="other-kid")
    with engine.connect() as conn:
        dump = [
            v for t in metadata.sorted_tables for row in conn.execute(sa.select(t)) for v in row
        ]
    blob = b"".join(v if isinstance(v, bytes) else str(v).encode() for v in dump)
    assert first.public_key in blob  # the dump is real
    assert seed not in blob and seed.hex().encode() not in blob
    assert first.private_key_enc.startswith("kek1.")


def test_wrong_kek_cannot_sign(
    session: Session, keyring: KeyRing, kek: bytes, now: dt.datetime
) -> None:
    key = keyring.ensure_active_key(session=session, kek=kek, now=now)
    with pytest.raises(SigningKeyError):
        keyring.signer_for(key, kek=generate_key())
    with pytest.raises(SigningKeyError):
        keyring.signer_for(key, kek=b"short")


def test_rotation_keeps_old_signatures_verifying(
    session: Session, keyring: KeyRing, kek: bytes, now: dt.datetime, tmp_path: Path
) -> None:
    old_signer = keyring.signer(session=session, kek=kek, now=now)
    old_kid = old_signer.verification_method.split("#")[1]
    signed_old = create_proof(_credential(keyring.issuer_did), signer=old_signer, created=now)
    later = now + dt.timedelta(days=90)
    new_key = keyring.rotate(session=session, kek=kek, now=later)
    session.commit()
    old_key = session.get(SigningKey, old_kid)
    assert old_key is not None
    assert (old_key.status, old_key.rotated_at, old_key.retired_at) == ("rotated", later, None)
    assert keyring.active_key(session=session) == new_key and new_key.kid != old_kid
    with pytest.raises(SigningKeyError):
        keyring.signer_for(old_key, kek=kek)
    signed_new = create_proof(
        _credential(keyring.issuer_did), signer=keyring.signer_for(new_key, kek=kek), created=later
    )
    assert list(keyring.public_keys(session=session)) == [old_kid, new_key.kid]

    # The published forms carry both keys, and a verifier offline needs nothing else.
    did_file = tmp_path / "did.json"
    did_file.write_text(json.dumps(keyring.did_document(session=session)))
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(keyring.jwks(session=session)))
    for keys in (
        keyring.key_set(session=session),
        KeySet.from_file(did_file),
        KeySet.from_file(jwks_file, controller=keyring.issuer_did),
    ):
        for signed in (signed_old, signed_new):
            verify_credential(signed, keys=keys, now=later)
    with pytest.raises(VerificationError) as caught:
        verify_credential(signed_old, keys=KeySet.from_keys(keyring.issuer_did, {}), now=later)
    assert caught.value.code == "unknown_key"


def test_retire_needs_a_rotated_key_and_then_reports_it(
    session: Session, keyring: KeyRing, kek: bytes, now: dt.datetime, tmp_path: Path
) -> None:
    first = keyring.ensure_active_key(session=session, kek=kek, now=now)
    signed = create_proof(
        _credential(keyring.issuer_did), signer=keyring.signer_for(first, kek=kek), created=now
    )
    with pytest.raises(SigningKeyError, match="rotate"):
        keyring.retire(first.kid, session=session, now=now)  # the hub is never left keyless
    second = keyring.rotate(session=session, kek=kek, now=now)
    later = now + dt.timedelta(days=1)
    retired = keyring.retire(first.kid, session=session, now=later)
    assert (retired.status, retired.retired_at) == ("retired", later)
    assert keyring.retire(first.kid, session=session, now=later).status == "retired"
    assert keyring.active_key(session=session) == second
    with pytest.raises(SigningKeyError):
        keyring.retire("no-such-kid", session=session, now=now)
    with pytest.raises(SigningKeyError):
        keyring.signer_for(retired, kek=kek)
    session.commit()
    # Published: the DID document keeps the key with `revoked`, out of assertionMethod; the
    # JWKS drops it. A verifier with the DID document says "retired key", not "unknown key".
    document = keyring.did_document(session=session)
    method = f"{keyring.issuer_did}#{first.kid}"
    assert method not in document["assertionMethod"]
    (entry,) = [m for m in document["verificationMethod"] if m["id"] == method]
    assert entry["revoked"] == "2026-11-28T02:00:00Z"
    assert [k["kid"] for k in keyring.jwks(session=session)["keys"]] == [second.kid]
    did_file = tmp_path / "did.json"
    did_file.write_text(json.dumps(document))
    for keys in (keyring.key_set(session=session), KeySet.from_file(did_file)):
        with pytest.raises(VerificationError) as caught:
            verify_credential(signed, keys=keys, now=later)
        assert caught.value.code == "retired_key"
        assert first.kid in caught.value.message and "2026-11-28" in caught.value.message
        # A forgery naming the retired key is still a bad signature, not "signed by" it.
        forged = json.loads(json.dumps(signed))
        forged["credentialSubject"]["name"] = "forged"
        with pytest.raises(VerificationError) as caught:
            verify_credential(forged, keys=keys, now=later)
        assert caught.value.code == "bad_signature"


def test_database_refuses_a_second_active_key(
    session: Session, keyring: KeyRing, kek: bytes, now: dt.datetime
) -> None:
    key = keyring.ensure_active_key(session=session, kek=kek, now=now)
    session.commit()
    session.add(
        SigningKey(
            kid="second",
            algorithm="Ed25519",
            public_key=key.public_key,
            private_key_enc="x",
            status="active",
            created_at=now,
        )
    )
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()


def test_ensure_active_key_survives_losing_the_race(postgres_url: str, kek: bytes) -> None:
    # PostgreSQL only: SQLite serialises writers, so there is no race to lose there.
    engine = sa.create_engine(postgres_url)
    metadata.create_all(engine)
    keyring = KeyRing(issuer_did="did:web:onehub.gd.gov.cn")
    now = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
    result: dict[str, object] = {}
    try:
        with Session(engine) as winner, Session(engine) as loser, engine.connect() as probe:
            won = keyring.ensure_active_key(session=winner, kek=kek, now=now).kid  # uncommitted

            def lose() -> None:
                try:
                    result["key"] = keyring.ensure_active_key(session=loser, kek=kek, now=now).kid
                    loser.commit()
                except Exception as exc:  # handed to the main thread, which fails the test
                    result["error"] = exc

            thread = threading.Thread(target=lose)
            thread.start()
            # Wait until the loser is blocked on the winner's row in the unique index.
            deadline = time.monotonic() + 10
            while not probe.scalar(sa.text("SELECT count(*) FROM pg_locks WHERE NOT granted")):
                assert time.monotonic() < deadline, "the loser never blocked on the winner"
                time.sleep(0.01)
            winner.commit()
            thread.join(10)
        assert "error" not in result, result
        assert result["key"] == won
    finally:
        engine.dispose()
