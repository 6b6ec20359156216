"""Ed25519 through our facade: RFC 8032 §7.1, djb's sign.input and Wycheproof."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from license_store import ed25519
from license_store.error import KeyFormatError, VerificationError

ED = Path(__file__).parents[1] / "vectors" / "ed25519"
RFC = json.loads((ED / "rfc8032_section7_1.json").read_text())["vectors"]


def _djb_lines() -> list[tuple[bytes, bytes, bytes, bytes]]:
    cases = []
    for line in (ED / "djb_sign_input_first64.txt").read_text().splitlines():
        fields = line.split(":")
        message = bytes.fromhex(fields[2])
        cases.append(
            (
                bytes.fromhex(fields[0][:64]),
                bytes.fromhex(fields[1]),
                message,
                bytes.fromhex(fields[3])[:64],
            )
        )
    return cases


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def _check_known_answer(seed: bytes, public: bytes, message: bytes, signature: bytes) -> None:
    private_key = ed25519.private_key_from_seed(seed)
    assert ed25519.public_bytes(private_key.public_key()) == public
    assert private_key.sign(message) == signature
    # The signing path issuance uses (libsodium) gives the same bytes.
    secret = ed25519.SecretKey(private_key)
    assert secret.sign(message) == signature
    assert secret.sign_many([message, message]) == [signature, signature]
    public_key = ed25519.public_key_from_bytes(public)
    ed25519.verify(public_key, message, signature)


@pytest.mark.parametrize("vector", RFC, ids=[v["name"] for v in RFC])
def test_rfc8032_section_7_1(vector: dict[str, str]) -> None:
    seed = bytes.fromhex(vector["secret_key_seed_hex"])
    public = bytes.fromhex(vector["public_key_hex"])
    message = bytes.fromhex(vector["message_hex"])
    signature = bytes.fromhex(vector["signature_hex"])
    _check_known_answer(seed, public, message, signature)
    key = ed25519.public_key_from_bytes(public)
    # Every bit of the signature, and a spread of message bits, must matter.
    for bit in range(len(signature) * 8):
        with pytest.raises(VerificationError) as caught:
            ed25519.verify(key, message, _flip(signature, bit))
        assert caught.value.code == "bad_signature"
    for bit in range(0, len(message) * 8, max(1, len(message) * 8 // 64)):
        with pytest.raises(VerificationError):
            ed25519.verify(key, _flip(message, bit), signature)
    with pytest.raises(VerificationError):
        ed25519.verify(key, message + b"\x00", signature)


def test_rfc8032_vectors_are_all_there() -> None:
    assert [v["name"] for v in RFC] == ["TEST 1", "TEST 2", "TEST 3", "TEST 1024", "TEST SHA(abc)"]


def test_djb_sign_input_first_64_lines() -> None:
    cases = _djb_lines()
    assert len(cases) == 64
    for seed, public, message, signature in cases:
        _check_known_answer(seed, public, message, signature)
        with pytest.raises(VerificationError):
            ed25519.verify(ed25519.public_key_from_bytes(public), message, _flip(signature, 0))


def _wycheproof() -> list[tuple[str, str, dict[str, Any]]]:
    data = json.loads((ED / "wycheproof_ed25519_test.json").read_text())
    return [
        (group["publicKey"]["pk"], f"tc{test['tcId']}", test)
        for group in data["testGroups"]
        for test in group["tests"]
    ]


WYCHEPROOF = _wycheproof()


def test_wycheproof_count() -> None:
    assert len(WYCHEPROOF) == 151
    assert sum(t["result"] == "valid" for _, _, t in WYCHEPROOF) == 88


@pytest.mark.parametrize(
    ("pk", "test"), [(pk, t) for pk, _, t in WYCHEPROOF], ids=[i for _, i, _ in WYCHEPROOF]
)
def test_wycheproof(pk: str, test: dict[str, Any]) -> None:
    try:
        key = ed25519.public_key_from_bytes(bytes.fromhex(pk))
        ed25519.verify(key, bytes.fromhex(test["msg"]), bytes.fromhex(test["sig"]))
        accepted = True
    except (VerificationError, KeyFormatError):
        accepted = False
    assert accepted == (test["result"] == "valid"), test["comment"]


@pytest.mark.parametrize("size", [0, 31, 33, 64])
def test_key_sizes_are_checked_before_parsing(size: int) -> None:
    with pytest.raises(KeyFormatError):
        ed25519.public_key_from_bytes(b"\x01" * size)
    with pytest.raises(KeyFormatError):
        ed25519.private_key_from_seed(b"\x01" * size)


@settings(max_examples=200, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), messages=st.lists(st.binary(max_size=300)))
def test_libsodium_signs_exactly_as_cryptography(seed: bytes, messages: list[bytes]) -> None:
    # Ed25519 is deterministic: the signer issuance uses must give OpenSSL's bytes, which
    # every verifier (ours included) checks.
    private_key = ed25519.private_key_from_seed(seed)
    secret = ed25519.SecretKey(private_key)
    assert secret.sign_many(messages) == [private_key.sign(m) for m in messages]
    assert all(secret.sign(m) == private_key.sign(m) for m in messages)
    assert seed.hex() not in repr(secret)
