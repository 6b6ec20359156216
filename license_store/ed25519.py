"""Ed25519 (RFC 8032): keys and verification over pyca/cryptography, signing over libsodium.

Keys are generated, stored, published and verified with ``cryptography`` (OpenSSL). Signing
goes through libsodium (PyCA's PyNaCl): Ed25519 signatures are deterministic, so both libraries
give the same 64 bytes for the same seed and message (tests/license_store/test_ed25519.py checks
it over RFC 8032's vectors and generated keys), and libsodium signs about 1.5 times faster here
(64-bit field arithmetic on x86-64, where OpenSSL's Ed25519 uses its portable 32-bit code;
bench/issuance.py measures both). Issuance is bound by signing, so that is its throughput.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from nacl.bindings import crypto_sign, crypto_sign_seed_keypair

from license_store.error import KeyFormatError, VerificationError

ALGORITHM: Final = "Ed25519"
SEED_SIZE: Final = 32
PUBLIC_KEY_SIZE: Final = 32
SIGNATURE_SIZE: Final = 64


def generate() -> Ed25519PrivateKey:
    """Return a new random Ed25519 private key."""
    return Ed25519PrivateKey.generate()


def private_key_from_seed(seed: bytes) -> Ed25519PrivateKey:
    """Load a private key from its 32-byte RFC 8032 seed."""
    if len(seed) != SEED_SIZE:
        raise KeyFormatError(f"an Ed25519 seed has {SEED_SIZE} bytes, not {len(seed)}")
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_from_bytes(data: bytes) -> Ed25519PublicKey:
    """Load a public key from its 32-byte RFC 8032 encoding."""
    if len(data) != PUBLIC_KEY_SIZE:
        raise KeyFormatError(f"an Ed25519 public key has {PUBLIC_KEY_SIZE} bytes, not {len(data)}")
    try:
        return Ed25519PublicKey.from_public_bytes(data)
    except ValueError:
        raise KeyFormatError("not an Ed25519 public key") from None


def seed_of(key: Ed25519PrivateKey) -> bytes:
    """Return the 32-byte seed of a private key."""
    return key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def public_bytes(key: Ed25519PublicKey) -> bytes:
    """Return the 32-byte encoding of a public key."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class SecretKey:
    """An Ed25519 private key in libsodium's form (seed and public key), for signing.

    Built from a ``cryptography`` key, whose public half it must reproduce.
    """

    __slots__ = ("_secret",)

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        public, self._secret = crypto_sign_seed_keypair(seed_of(private_key))
        if public != public_bytes(private_key.public_key()):
            raise KeyFormatError("libsodium and OpenSSL disagree on this key's public half")

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte signature of ``message`` (the same as ``cryptography``'s)."""
        return crypto_sign(message, self._secret)[:SIGNATURE_SIZE]

    def sign_many(self, messages: Iterable[bytes]) -> list[bytes]:
        """Return the signatures of many messages."""
        secret = self._secret
        return [crypto_sign(message, secret)[:SIGNATURE_SIZE] for message in messages]

    def __repr__(self) -> str:
        return "SecretKey(...)"  # never show key material


def verify(public_key: Ed25519PublicKey, message: bytes, signature: bytes) -> None:
    """Verify a signature; raise VerificationError("bad_signature") on any failure."""
    if len(signature) != SIGNATURE_SIZE:
        raise VerificationError("bad_signature")
    try:
        public_key.verify(signature, message)
    except InvalidSignature:
        raise VerificationError("bad_signature") from None
