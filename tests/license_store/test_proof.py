"""eddsa-jcs-2022 against the W3C vc-di-eddsa test vector, step by step, plus tampering."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import base58
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from license_store import ed25519, multikey
from license_store.canonical import canonicalize
from license_store.did import did_key_verification_method, resolve_did_key
from license_store.error import UnsupportedAlgorithmError, VerificationError
from license_store.key_set import KeySet
from license_store.proof import create_proof, hash_data, verify_proof
from license_store.signer import Ed25519Signer

NodePath = tuple[str | int, ...]


def paths(value: Any, prefix: NodePath = ()) -> Iterator[tuple[NodePath, Any]]:
    """Yield (path, value) for every node below the root."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*prefix, key), item
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*prefix, index), item
            yield from paths(item, (*prefix, index))


def changed(value: Any) -> Any:
    """Return a different JSON value of the same kind where one exists."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return value[:-1] + ("x" if not value.endswith("x") else "y") if value else "x"
    if value is None:
        return "null"
    if isinstance(value, list):
        return [*value, "extra"]
    return {**value, "extra": "x"}


def mutations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (description, mutated copy) for every single-field change, addition and removal."""
    root_targets: list[tuple[NodePath, Any]] = [((), document), *paths(document)]
    for path, value in root_targets:
        if path:
            yield f"change {path}", _set(document, path, changed(value))
            yield f"remove {path}", _remove(document, path)
        if isinstance(value, dict):
            yield (
                f"add key under {path}",
                _set(document, (*path, "tampered"), "x")
                if path
                else {
                    **copy.deepcopy(document),
                    "tampered": "x",
                },
            )
        if isinstance(value, list) and len(value) > 1:
            yield f"reverse {path}", _set(document, path, list(reversed(value)))


def _set(document: dict[str, Any], path: NodePath, new: Any) -> dict[str, Any]:
    result = copy.deepcopy(document)
    target: Any = result
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return result


def _remove(document: dict[str, Any], path: NodePath) -> dict[str, Any]:
    result = copy.deepcopy(document)
    target: Any = result
    for step in path[:-1]:
        target = target[step]
    del target[path[-1]]
    return result


W3C = Path(__file__).parents[1] / "vectors" / "vc_di_eddsa_jcs_2022"
CREATED = dt.datetime(2023, 2, 24, 23, 36, 38, tzinfo=dt.UTC)


def _json(name: str) -> Any:
    return json.loads((W3C / name).read_bytes())


def _text(name: str) -> bytes:
    return (W3C / name).read_bytes()


@pytest.fixture(scope="module")
def signer() -> Ed25519Signer:
    private_key = multikey.decode_private_key(_json("keyPair.json")["privateKeyMultibase"])
    return Ed25519Signer(
        private_key, verification_method=did_key_verification_method(private_key.public_key())
    )


def test_key_pair_decodes_with_multicodec_prefixes() -> None:
    pair = _json("keyPair.json")
    public = base58.b58decode(pair["publicKeyMultibase"][1:])
    private = base58.b58decode(pair["privateKeyMultibase"][1:])
    assert public[:2].hex() == "ed01" and len(public) == 34
    assert private[:2].hex() == "8026" and len(private) == 34
    seed_key = ed25519.private_key_from_seed(private[2:])
    assert ed25519.public_bytes(seed_key.public_key()) == public[2:]
    assert (
        ed25519.public_bytes(multikey.decode_public_key(pair["publicKeyMultibase"])) == public[2:]
    )
    assert multikey.encode_public_key(seed_key.public_key()) == pair["publicKeyMultibase"]
    assert multikey.encode_private_key(seed_key) == pair["privateKeyMultibase"]


def test_every_intermediate_file_is_reproduced(signer: Ed25519Signer) -> None:
    unsigned = _json("unsigned.json")
    canonical_doc = canonicalize(unsigned)
    assert canonical_doc == _text("canonDocJCS.txt")
    assert hashlib.sha256(canonical_doc).hexdigest().encode() == _text("docHashJCS.txt")
    canonical_config = canonicalize(_json("proofConfigJCS.json"))
    assert canonical_config == _text("proofCanonJCS.txt")
    assert hashlib.sha256(canonical_config).hexdigest().encode() == _text("proofHashJCS.txt")
    combined = _text("proofHashJCS.txt") + _text("docHashJCS.txt")
    assert combined == _text("combinedHashJCS.txt")
    config_without_context = {
        k: v for k, v in _json("proofConfigJCS.json").items() if k != "@context"
    }
    data = hash_data(unsigned, config_without_context)
    assert data.hex().encode() == _text("combinedHashJCS.txt")
    signature = signer.sign(data)
    assert signature.hex().encode() == _text("sigHexJCS.txt")
    assert multikey.encode_base58btc(signature).encode() == _text("sigBTC58JCS.txt")


def test_resigning_unsigned_reproduces_signed(signer: Ed25519Signer) -> None:
    signed = create_proof(_json("unsigned.json"), signer=signer, created=CREATED)
    assert signed == _json("signedJCS.json")
    assert signed["proof"]["proofValue"].encode() == _text("sigBTC58JCS.txt")
    assert {k: v for k, v in signed.items() if k != "proof"} == _json("unsigned.json")
    assert {k: v for k, v in signed["proof"].items() if k != "proofValue"} == _json(
        "proofConfigJCS.json"
    )


def test_signed_vector_verifies_with_did_key_and_no_key_store() -> None:
    verify_proof(_json("signedJCS.json"), resolve_key=resolve_did_key)
    verify_proof(_json("signedJCS.json"), resolve_key=KeySet.did_key())


def test_vector_is_refused_when_did_key_resolution_is_off() -> None:
    with pytest.raises(VerificationError) as caught:
        verify_proof(_json("signedJCS.json"), resolve_key=KeySet())
    assert caught.value.code == "unknown_key"


def test_every_single_field_change_of_the_vector_is_rejected() -> None:
    signed = _json("signedJCS.json")
    tried = 0
    for _description, mutated in mutations(signed):
        # Including removing proof.@context: hash-neutral by the spec (the proof configuration
        # takes the document's @context), refused by us (a proof must repeat it).
        with pytest.raises(VerificationError):
            verify_proof(mutated, resolve_key=resolve_did_key)
        tried += 1
    # A change and a removal per node, plus additions and reorders: make sure they all ran.
    assert tried >= 2 * len(list(paths(signed)))


def test_every_character_of_the_proof_value_matters() -> None:
    signed = _json("signedJCS.json")
    value = signed["proof"]["proofValue"]
    for index in range(len(value)):
        replacement = "2" if value[index] != "2" else "3"
        mutated = copy.deepcopy(signed)
        mutated["proof"]["proofValue"] = value[:index] + replacement + value[index + 1 :]
        with pytest.raises(VerificationError):
            verify_proof(mutated, resolve_key=resolve_did_key)


def test_changed_proof_value_codes() -> None:
    signed = _json("signedJCS.json")
    for proof_value, code in [
        ("u" + signed["proof"]["proofValue"][1:], "malformed"),  # not base58btc
        ("z" + "1" + signed["proof"]["proofValue"][1:], "malformed"),  # 65 bytes
        ("z0OIl", "malformed"),  # not in the alphabet
        ("z" + "2" * 200, "malformed"),  # bounded before decoding
        (multikey.encode_base58btc(b"\x00" * 64), "bad_signature"),
    ]:
        mutated = copy.deepcopy(signed)
        mutated["proof"]["proofValue"] = proof_value
        with pytest.raises(VerificationError) as caught:
            verify_proof(mutated, resolve_key=resolve_did_key)
        assert caught.value.code == code, proof_value


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("cryptosuite", "eddsa-rdfc-2022", "unsupported_cryptosuite"),
        ("cryptosuite", "ecdsa-jcs-2019", "unsupported_cryptosuite"),
        ("type", "Ed25519Signature2020", "unsupported_cryptosuite"),
        ("proofPurpose", "authentication", "malformed"),
        ("created", "2023-02-24 23:36:38", "malformed"),
        ("verificationMethod", "did:key:zNotAKey#zNotAKey", "unknown_key"),
        ("verificationMethod", "did:web:elsewhere.example#k1", "unknown_key"),
        ("verificationMethod", 42, "malformed"),
    ],
)
def test_refusal_codes(field: str, value: object, code: str) -> None:
    mutated = _json("signedJCS.json")
    mutated["proof"][field] = value
    with pytest.raises(VerificationError) as caught:
        verify_proof(mutated, resolve_key=KeySet.did_key())
    assert caught.value.code == code


def test_missing_or_listed_proof_is_malformed() -> None:
    signed = _json("signedJCS.json")
    with pytest.raises(VerificationError) as caught:
        verify_proof({k: v for k, v in signed.items() if k != "proof"}, resolve_key=resolve_did_key)
    assert caught.value.code == "malformed"
    with pytest.raises(VerificationError):
        verify_proof({**signed, "proof": [signed["proof"]]}, resolve_key=resolve_did_key)


def test_appended_context_is_refused_although_the_spec_would_allow_it() -> None:
    signed = _json("signedJCS.json")
    signed["@context"] = [*signed["@context"], "https://w3id.org/security/data-integrity/v2"]
    with pytest.raises(VerificationError):
        verify_proof(signed, resolve_key=resolve_did_key)


def test_other_key_same_document_is_rejected(signer: Ed25519Signer) -> None:
    other = Ed25519Signer(
        ed25519.private_key_from_seed(b"\x07" * 32), verification_method=signer.verification_method
    )
    forged = create_proof(_json("unsigned.json"), signer=other, created=CREATED)
    with pytest.raises(VerificationError) as caught:
        verify_proof(forged, resolve_key=resolve_did_key)
    assert caught.value.code == "bad_signature"


def test_create_proof_refuses_non_ed25519_and_existing_proof(signer: Ed25519Signer) -> None:
    class Sm2Signer:
        verification_method = "did:web:hub.example#sm2"
        algorithm = "SM2"

        def sign(self, data: bytes) -> bytes:
            raise AssertionError("must not be called")

    with pytest.raises(UnsupportedAlgorithmError):
        create_proof(_json("unsigned.json"), signer=Sm2Signer(), created=CREATED)
    with pytest.raises(Exception, match="already has a proof"):
        create_proof(_json("signedJCS.json"), signer=signer, created=CREATED)
    with pytest.raises(Exception, match="time zone"):
        create_proof(_json("unsigned.json"), signer=signer, created=dt.datetime(2023, 1, 1))


def test_oversized_document_is_malformed_before_hashing() -> None:
    signed = _json("signedJCS.json")
    signed["credentialSubject"]["bulk"] = list(range(50_000))
    with pytest.raises(VerificationError) as caught:
        verify_proof(signed, resolve_key=resolve_did_key)
    assert caught.value.code == "malformed"


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=6,
)
_SIGNED = json.loads((W3C / "signedJCS.json").read_bytes())
_PATHS = [path for path, _ in paths(_SIGNED) if path not in (("proof", "proofValue"),)]


@settings(max_examples=150, deadline=None)
@given(path=st.sampled_from(_PATHS), replacement=_JSON)
def test_replacing_any_node_with_any_other_json_value_is_rejected(
    path: tuple[str | int, ...], replacement: Any
) -> None:
    document = copy.deepcopy(_SIGNED)
    target: Any = document
    for step in path[:-1]:
        target = target[step]
    original = target[path[-1]]
    if canonicalize(replacement) == canonicalize(original):
        replacement = changed(original)
    target[path[-1]] = replacement
    with pytest.raises(VerificationError):
        verify_proof(document, resolve_key=resolve_did_key)
