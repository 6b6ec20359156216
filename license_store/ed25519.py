"""Ed25519 (RFC 8032) over pyca/cryptography, with sizes checked before any parsing."""

from __future__ import annotations

from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

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


def verify(public_key: Ed25519PublicKey, message: bytes, signature: bytes) -> None:
    """Verify a signature; raise VerificationError("bad_signature") on any failure."""
    if len(signature) != SIGNATURE_SIZE:
        raise VerificationError("bad_signature")
    try:
        public_key.verify(signature, message)
    except InvalidSignature:
        raise VerificationError("bad_signature") from None
