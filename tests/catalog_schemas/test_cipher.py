"""FieldCipher: AES-256-GCM tokens bound to associated data, with key rotation."""

from __future__ import annotations

import base64
import re

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from catalog_schemas.cipher import (
    CipherKeyError,
    DecryptionError,
    FieldCipher,
    generate_key,
)
from catalog_schemas.errors import FatalError

K1 = bytes(range(32))
K2 = bytes(range(100, 132))
AAD = "3f1c0e6a" * 8  # a holder_key
ID = "11010519491231002X"


def _payload(token: str) -> bytes:
    payload = token.split(".", 1)[1]
    return base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))


def _encode(kid: str, raw: bytes) -> str:
    return kid + "." + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def test_round_trip_and_token_shape() -> None:
    cipher = FieldCipher({"k1": K1}, "k1")
    token = cipher.encrypt(ID, aad=AAD)
    assert re.fullmatch(r"k1\.[A-Za-z0-9_-]+", token)
    assert ID not in token
    assert cipher.decrypt(token, aad=AAD) == ID.encode()
    assert cipher.decrypt_text(token, aad=AAD) == ID
    assert cipher.active_kid == "k1"
    # nonce (12) + ciphertext (18) + tag (16)
    assert len(_payload(token)) == 12 + len(ID) + 16


def test_token_is_plain_aes_256_gcm_over_nonce_and_ciphertext() -> None:
    """Interoperability: any AES-GCM implementation can open a token given the key and aad."""
    token = FieldCipher({"k1": K1}, "k1").encrypt(ID, aad=AAD)
    raw = _payload(token)
    assert AESGCM(K1).decrypt(raw[:12], raw[12:], AAD.encode()) == ID.encode()
    # and the other way round: a token assembled by hand decrypts
    nonce = bytes(12)
    sealed = AESGCM(K1).encrypt(nonce, b"hello", b"license-1")
    assert FieldCipher({"k1": K1}, "k1").decrypt(
        _encode("k1", nonce + sealed), aad="license-1"
    ) == (b"hello")


def test_bytes_plaintext_and_aad() -> None:
    cipher = FieldCipher({"k1": K1}, "k1")
    blob = bytes(range(256))
    token = cipher.encrypt(blob, aad=b"quarantine:src:1")
    assert cipher.decrypt(token, aad=b"quarantine:src:1") == blob
    assert cipher.decrypt(token, aad="quarantine:src:1") == blob  # str aad is its UTF-8 bytes
    with pytest.raises(DecryptionError, match="UTF-8"):
        cipher.decrypt_text(token, aad="quarantine:src:1")


def test_nonces_are_fresh() -> None:
    cipher = FieldCipher({"k1": K1}, "k1")
    tokens = {cipher.encrypt(ID, aad=AAD) for _ in range(50)}
    assert len(tokens) == 50
    assert len({_payload(t)[:12] for t in tokens}) == 50


def test_wrong_aad_fails() -> None:
    cipher = FieldCipher({"k1": K1}, "k1")
    token = cipher.encrypt(ID, aad=AAD)
    with pytest.raises(DecryptionError) as info:
        cipher.decrypt(token, aad=AAD[:-1] + "0")
    assert info.value.code == "decryption_failed"
    assert isinstance(info.value, FatalError)
    assert ID not in str(info.value)


def test_every_single_character_change_is_detected() -> None:
    cipher = FieldCipher({"k1": K1}, "k1")
    token = cipher.encrypt(ID, aad=AAD)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for i in range(len(token)):
        for replacement in {alphabet[(alphabet.find(token[i]) + 1) % 64], "A", "."}:
            if replacement == token[i]:
                continue
            tampered = token[:i] + replacement + token[i + 1 :]
            with pytest.raises(DecryptionError):
                cipher.decrypt(tampered, aad=AAD)


def test_every_bit_flip_of_the_payload_is_detected() -> None:
    cipher = FieldCipher({"k1": K1}, "k1")
    raw = _payload(cipher.encrypt(ID, aad=AAD))
    for i in range(len(raw) * 8):
        flipped = bytearray(raw)
        flipped[i // 8] ^= 1 << (i % 8)
        with pytest.raises(DecryptionError):
            cipher.decrypt(_encode("k1", bytes(flipped)), aad=AAD)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "k1",
        "k1.",
        ".abc",
        "k1.AAAA",
        "k1.****",
        "k1.abc=",
        "k1.A",
        "k1." + "A" * 70_000,
        "k1.a.b",
    ],
)
def test_malformed_tokens_fail(token: str) -> None:
    with pytest.raises(DecryptionError):
        FieldCipher({"k1": K1}, "k1").decrypt(token, aad=AAD)


def test_non_canonical_base64_is_refused() -> None:
    cipher = FieldCipher({"k1": K1}, "k1")
    token = cipher.encrypt("x", aad=AAD)  # 29 bytes: the last character carries unused bits
    raw = _payload(token)
    assert len(raw) % 3 != 0
    last = token[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    sibling = alphabet[alphabet.index(last) ^ 1]  # same decoded bytes, other unused bit
    alias = token[:-1] + sibling
    assert _payload(alias) == raw
    with pytest.raises(DecryptionError, match="malformed"):
        cipher.decrypt(alias, aad=AAD)


def test_unknown_kid_fails() -> None:
    token = FieldCipher({"k1": K1}, "k1").encrypt(ID, aad=AAD)
    with pytest.raises(DecryptionError, match="unknown key id"):
        FieldCipher({"k2": K2}, "k2").decrypt(token, aad=AAD)
    # the same key under another id is still another id
    with pytest.raises(DecryptionError, match="unknown key id"):
        FieldCipher({"k9": K1}, "k9").decrypt(token, aad=AAD)


def test_swapping_the_kid_fails() -> None:
    both = FieldCipher({"k1": K1, "k2": K2}, "k2")
    token = both.encrypt(ID, aad=AAD)
    with pytest.raises(DecryptionError, match="authentication"):
        both.decrypt("k1." + token.split(".", 1)[1], aad=AAD)


def test_rotation_keeps_old_tokens_readable() -> None:
    old = FieldCipher({"k1": K1}, "k1")
    old_token = old.encrypt(ID, aad=AAD)
    rotated = FieldCipher({"k1": K1, "k2": K2}, "k2")
    new_token = rotated.encrypt(ID, aad=AAD)
    assert new_token.startswith("k2.")
    assert rotated.decrypt_text(old_token, aad=AAD) == ID
    assert rotated.decrypt_text(new_token, aad=AAD) == ID
    with pytest.raises(DecryptionError):
        old.decrypt(new_token, aad=AAD)
    retired = FieldCipher({"k2": K2}, "k2")
    with pytest.raises(DecryptionError, match="unknown key id"):
        retired.decrypt(old_token, aad=AAD)


def test_encrypt_many() -> None:
    cipher = FieldCipher({"k1": K1}, "k1")
    values = [ID, None, "91110000600037341L", None]
    aads = ["a" * 64, "", "b" * 64, "c"]
    tokens = cipher.encrypt_many(values, aads)
    assert tokens[1] is None and tokens[3] is None
    assert tokens[0] is not None and tokens[2] is not None
    assert cipher.decrypt_text(tokens[0], aad=aads[0]) == ID
    assert cipher.decrypt_text(tokens[2], aad=aads[2]) == "91110000600037341L"
    with pytest.raises(DecryptionError):
        cipher.decrypt(tokens[0], aad=aads[2])  # each value is bound to its own aad
    assert cipher.encrypt_many([], []) == []
    with pytest.raises(ValueError, match="same length"):
        cipher.encrypt_many([ID], [])
    with pytest.raises(ValueError, match="aad"):
        cipher.encrypt_many([ID], [""])


def test_empty_aad_is_refused() -> None:
    cipher = FieldCipher({"k1": K1}, "k1")
    with pytest.raises(ValueError, match="aad"):
        cipher.encrypt(ID, aad="")
    with pytest.raises(ValueError, match="aad"):
        cipher.decrypt(cipher.encrypt(ID, aad=AAD), aad=b"")


@pytest.mark.parametrize(
    ("keys", "active"),
    [
        ({"k1": K1}, "k2"),
        ({"k.1": K1}, "k.1"),
        ({"": K1}, ""),
        ({"k1": K1[:16]}, "k1"),
        ({"k1": K1 + b"x"}, "k1"),
        ({"k1": "0" * 32}, "k1"),
    ],
)
def test_bad_key_sets_are_refused(keys: dict[str, bytes], active: str) -> None:
    with pytest.raises(CipherKeyError) as info:
        FieldCipher(keys, active)
    assert info.value.code == "cipher_key_invalid"


def test_generate_key() -> None:
    a, b = generate_key(), generate_key()
    assert len(a) == 32 and len(b) == 32 and a != b
    cipher = FieldCipher({"fresh": a}, "fresh")
    assert cipher.decrypt_text(cipher.encrypt("é中", aad=AAD), aad=AAD) == "é中"


@pytest.mark.parametrize("swap", [("-", "+"), ("_", "/")])
def test_the_standard_base64_alphabet_is_refused(swap: tuple[str, str]) -> None:
    """The same bytes spelled with "+" or "/" are another token: refused, not folded."""
    cipher = FieldCipher({"k1": K1}, "k1")
    token = next(t for t in (cipher.encrypt("x" * 40, aad=AAD) for _ in range(500)) if swap[0] in t)
    kid, payload = token.split(".")
    with pytest.raises(DecryptionError, match="malformed"):
        cipher.decrypt(kid + "." + payload.replace(swap[0], swap[1]), aad=AAD)


@pytest.mark.parametrize("odd", [" ", "\n", "é", "=", "=="])
def test_other_characters_in_the_payload_are_refused(odd: str) -> None:
    cipher = FieldCipher({"k1": K1}, "k1")
    token = cipher.encrypt("x" * 40, aad=AAD)
    middle = len(token) // 2
    for tampered in (token[:middle] + odd + token[middle:], token + odd):
        with pytest.raises(DecryptionError, match="malformed"):
            cipher.decrypt(tampered, aad=AAD)
