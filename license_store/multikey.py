"""Multibase base58btc and Multikey (multicodec-prefixed) encodings of Ed25519 keys.

``z`` + base58btc is the multibase form used by Data Integrity proofs and did:key;
0xed01 prefixes an Ed25519 public key and 0x8026 an Ed25519 private key (seed).
"""

from __future__ import annotations

from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from license_store import ed25519
from license_store.error import KeyFormatError

BASE58BTC_PREFIX: Final = "z"
ED25519_PUB: Final = b"\xed\x01"
ED25519_PRIV: Final = b"\x80\x26"
# Generous upper bound for every value we decode (a 64-byte signature is at most 88 chars).
MAX_MULTIBASE_CHARS: Final = 128
_ALPHABET: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_DIGIT: Final = {char: value for value, char in enumerate(_ALPHABET)}
# Ten base-58 digits per big-integer division, written two at a time from a table: about three
# times faster than one division per digit, which matters when a batch signs many licenses.
_PAIRS: Final = [a + b for a in _ALPHABET for b in _ALPHABET]
_PAIR: Final = 58 * 58
_CHUNK: Final = 58**10


def b58encode(data: bytes) -> str:
    """Return the Bitcoin base58 encoding of some bytes (leading zero bytes become ``1``)."""
    number = int.from_bytes(data, "big")
    chunks: list[str] = []
    while number:
        number, rest = divmod(number, _CHUNK)
        rest, d4 = divmod(rest, _PAIR)
        rest, d3 = divmod(rest, _PAIR)
        rest, d2 = divmod(rest, _PAIR)
        d0, d1 = divmod(rest, _PAIR)
        chunks.append(_PAIRS[d0] + _PAIRS[d1] + _PAIRS[d2] + _PAIRS[d3] + _PAIRS[d4])
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(chunks)).lstrip("1")


def b58decode(text: str) -> bytes:
    """Decode Bitcoin base58; raise ValueError on a character outside the alphabet."""
    number = 0
    try:
        for char in text:
            number = number * 58 + _DIGIT[char]
    except KeyError:
        raise ValueError("not a base58 character") from None
    zeros = len(text) - len(text.lstrip("1"))
    return b"\0" * zeros + (
        number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    )


def encode_base58btc(data: bytes) -> str:
    """Return the multibase base58btc string (``z...``) of some bytes."""
    return BASE58BTC_PREFIX + b58encode(data)


def decode_base58btc(text: str, *, max_chars: int = MAX_MULTIBASE_CHARS) -> bytes:
    """Decode a multibase base58btc string, refusing any other base and non-canonical forms."""
    if not isinstance(text, str) or not 1 < len(text) <= max_chars:
        raise KeyFormatError("multibase value is missing or too long")
    if not text.startswith(BASE58BTC_PREFIX):
        raise KeyFormatError("multibase value is not base58btc ('z')")
    try:
        # Base58 is a bijection between strings over its alphabet and byte strings (leading
        # "1"s are the leading zero bytes, the rest a number without a leading zero digit), so
        # every accepted string is the one encoding of its bytes; the tests check the round trip.
        return b58decode(text[1:])
    except ValueError:
        raise KeyFormatError("multibase value has characters outside base58btc") from None


def encode_public_key(key: Ed25519PublicKey) -> str:
    """Return the Multikey ``publicKeyMultibase`` (``z6Mk...``) of an Ed25519 public key."""
    return encode_base58btc(ED25519_PUB + ed25519.public_bytes(key))


def decode_public_key(multibase: str) -> Ed25519PublicKey:
    """Decode a Multikey Ed25519 public key (multicodec 0xed01)."""
    data = decode_base58btc(multibase)
    if len(data) != len(ED25519_PUB) + ed25519.PUBLIC_KEY_SIZE or not data.startswith(ED25519_PUB):
        raise KeyFormatError("not a Multikey Ed25519 public key (0xed01 + 32 bytes)")
    return ed25519.public_key_from_bytes(data[len(ED25519_PUB) :])


def encode_private_key(key: Ed25519PrivateKey) -> str:
    """Return the Multikey ``secretKeyMultibase`` of an Ed25519 private key (its seed)."""
    return encode_base58btc(ED25519_PRIV + ed25519.seed_of(key))


def decode_private_key(multibase: str) -> Ed25519PrivateKey:
    """Decode a Multikey Ed25519 private key (multicodec 0x8026 + 32-byte seed)."""
    data = decode_base58btc(multibase)
    if len(data) != len(ED25519_PRIV) + ed25519.SEED_SIZE or not data.startswith(ED25519_PRIV):
        raise KeyFormatError("not a Multikey Ed25519 private key (0x8026 + 32 bytes)")
    return ed25519.private_key_from_seed(data[len(ED25519_PRIV) :])
