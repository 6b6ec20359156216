"""Who signs: a small protocol, so an SM2 or HSM-backed signer can be added beside Ed25519."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from license_store import ed25519


class Signer(Protocol):
    """Signs bytes with one key, named by the DID URL a verifier resolves."""

    @property
    def verification_method(self) -> str:
        """DID URL of the public key, e.g. ``did:web:hub.example#<kid>``."""
        ...

    @property
    def algorithm(self) -> str:
        """Signature algorithm name, e.g. ``Ed25519``."""
        ...

    def sign(self, data: bytes) -> bytes:
        """Return the signature over ``data``."""
        ...


# Waits for and returns the signatures of one submitted batch, in order.
Pending = Callable[[], list[bytes]]


@runtime_checkable
class BatchSigner(Signer, Protocol):
    """A Signer that can take a batch and sign it while the caller goes on (a worker, an HSM)."""

    def submit(self, messages: Sequence[bytes]) -> Pending:
        """Start signing ``messages``; the returned callable waits for the signatures."""
        ...


def submit(signer: Signer, messages: Sequence[bytes]) -> Pending:
    """Sign a batch: in the background if the signer can, else right away."""
    if isinstance(signer, BatchSigner):
        return signer.submit(messages)
    if isinstance(signer, Ed25519Signer):
        signatures = signer.sign_many(messages)
    else:
        signatures = [signer.sign(message) for message in messages]
    return lambda: signatures


class Ed25519Signer:
    """A Signer holding an Ed25519 private key in memory (signing with libsodium, see ed25519)."""

    algorithm = ed25519.ALGORITHM

    def __init__(self, private_key: Ed25519PrivateKey, *, verification_method: str) -> None:
        self._key = ed25519.SecretKey(private_key)
        self._verification_method = verification_method

    @property
    def verification_method(self) -> str:
        """DID URL of the public key."""
        return self._verification_method

    def sign(self, data: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature over ``data``."""
        return self._key.sign(data)

    def sign_many(self, messages: Sequence[bytes]) -> list[bytes]:
        """Return the signatures of many messages (one call layer fewer per signature)."""
        return self._key.sign_many(messages)

    def __repr__(self) -> str:
        # Never show key material, not even by accident in a traceback or log line.
        return f"Ed25519Signer(verification_method={self._verification_method!r})"
