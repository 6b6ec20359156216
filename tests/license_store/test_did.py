"""did:key, did:web documents, JWKs and key sets built from them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from license_store import ed25519, multikey
from license_store.did import (
    did_document,
    did_key_of,
    did_key_verification_method,
    did_web_document_url,
    jwk_of,
    jwk_thumbprint,
    jwks,
    public_key_from_jwk,
    resolve_did_key,
)
from license_store.error import KeyFormatError, VerificationError
from license_store.key_set import KeySet

VECTOR_KEY = json.loads(
    (Path(__file__).parents[1] / "vectors" / "vc_di_eddsa_jcs_2022" / "keyPair.json").read_text()
)["publicKeyMultibase"]
# RFC 8032 TEST 1 public key, and its RFC 8037 §A.3 JWK thumbprint.
RFC_PUBLIC = ed25519.public_key_from_bytes(
    bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
)


def test_did_key_roundtrip_on_the_w3c_key() -> None:
    method = f"did:key:{VECTOR_KEY}#{VECTOR_KEY}"
    key = resolve_did_key(method)
    assert did_key_verification_method(key) == method
    assert did_key_of(key) == f"did:key:{VECTOR_KEY}"


@pytest.mark.parametrize(
    "method",
    [
        f"did:key:{VECTOR_KEY}",  # no fragment
        f"did:key:{VECTOR_KEY}#other",
        "did:web:example.com#k1",
        "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme#zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme",
        "did:key:z" + "1" * 600,
    ],
)
def test_bad_did_key_urls(method: str) -> None:
    with pytest.raises(KeyFormatError):
        resolve_did_key(method)


def test_rfc8037_thumbprint_and_jwk() -> None:
    assert jwk_thumbprint(RFC_PUBLIC) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    jwk = jwk_of("k1", RFC_PUBLIC)
    assert jwk["x"] == "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    assert (jwk["kty"], jwk["crv"], jwk["kid"]) == ("OKP", "Ed25519", "k1")
    assert ed25519.public_bytes(public_key_from_jwk(jwk)) == ed25519.public_bytes(RFC_PUBLIC)


@pytest.mark.parametrize(
    "change",
    [
        {"kty": "EC"},
        {"crv": "X25519"},
        {"x": "short"},
        {"d": "secret"},
        {"x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURp"},
    ],
)
def test_bad_jwks(change: dict[str, str]) -> None:
    with pytest.raises(KeyFormatError):
        public_key_from_jwk({**jwk_of("k1", RFC_PUBLIC), **change})


def test_did_document_and_jwks_give_the_same_key_set() -> None:
    other = ed25519.private_key_from_seed(b"\x01" * 32).public_key()
    keys = {"old": RFC_PUBLIC, "new": other}
    document = did_document("did:web:onehub.gd.gov.cn", keys)
    assert document["assertionMethod"] == [
        "did:web:onehub.gd.gov.cn#old",
        "did:web:onehub.gd.gov.cn#new",
    ]
    assert document["verificationMethod"][1]["publicKeyMultibase"] == multikey.encode_public_key(
        other
    )
    from_did = KeySet.from_did_document(document)
    from_jwks = KeySet.from_jwks(jwks(keys), controller="did:web:onehub.gd.gov.cn")
    for key_set in (from_did, from_jwks):
        assert set(key_set.keys) == {"did:web:onehub.gd.gov.cn#old", "did:web:onehub.gd.gov.cn#new"}
        resolved = key_set.resolve("did:web:onehub.gd.gov.cn#new")
        assert ed25519.public_bytes(resolved) == ed25519.public_bytes(other)
        with pytest.raises(VerificationError):
            key_set.resolve(f"did:key:{VECTOR_KEY}#{VECTOR_KEY}")


def _document(**changes: Any) -> dict[str, Any]:
    document = did_document("did:web:hub.example", {"k1": RFC_PUBLIC})
    document.update(changes)
    return document


def test_did_document_variants() -> None:
    relative = _document()
    relative["verificationMethod"][0]["id"] = "#k1"
    relative["assertionMethod"] = ["#k1"]
    assert list(KeySet.from_did_document(relative).keys) == ["did:web:hub.example#k1"]
    embedded = _document(
        assertionMethod=[
            {
                "id": "did:web:hub.example#j1",
                "type": "JsonWebKey",
                "controller": "did:web:hub.example",
                "publicKeyJwk": {k: v for k, v in jwk_of("j1", RFC_PUBLIC).items() if k != "kid"},
            }
        ]
    )
    assert list(KeySet.from_did_document(embedded).keys) == ["did:web:hub.example#j1"]


@pytest.mark.parametrize(
    "document",
    [
        _document(assertionMethod=[]),  # keys that may not sign assertions are not trusted
        _document(assertionMethod=["did:web:hub.example#missing"]),
        _document(id="https://hub.example"),
        _document(verificationMethod="nope"),
    ],
)
def test_bad_did_documents(document: dict[str, Any]) -> None:
    with pytest.raises(KeyFormatError):
        KeySet.from_did_document(document)


def test_key_controlled_by_another_did_is_refused() -> None:
    document = _document()
    document["verificationMethod"][0]["controller"] = "did:web:evil.example"
    with pytest.raises(KeyFormatError):
        KeySet.from_did_document(document)


def test_did_web_urls() -> None:
    assert (
        did_web_document_url("did:web:onehub.gd.gov.cn")
        == "https://onehub.gd.gov.cn/.well-known/did.json"
    )
    assert did_web_document_url("did:web:example.com%3A3000:user:alice") == (
        "https://example.com:3000/user/alice/did.json"
    )
    with pytest.raises(KeyFormatError):
        did_web_document_url("did:key:z6Mk")


def test_multibase_refuses_altered_and_foreign_forms() -> None:
    with pytest.raises(KeyFormatError):
        multikey.decode_public_key("z1" + VECTOR_KEY[1:])  # a leading zero byte
    with pytest.raises(KeyFormatError):
        multikey.decode_public_key(VECTOR_KEY + "1")
    with pytest.raises(KeyFormatError):
        multikey.decode_base58btc("f00")
    with pytest.raises(KeyFormatError):
        multikey.decode_private_key(VECTOR_KEY)  # a public key where a private one belongs
