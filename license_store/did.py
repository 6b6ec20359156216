"""DIDs for license keys: did:key resolution, and the hub's did:web document and JWKS."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import unquote

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from license_store import ed25519, multikey
from license_store.error import KeyFormatError
from license_store.timestamp import format_timestamp

DID_CONTEXT: Final = "https://www.w3.org/ns/did/v1"
MULTIKEY_CONTEXT: Final = "https://w3id.org/security/multikey/v1"
_DID_KEY: Final = "did:key:"
_DID_WEB: Final = "did:web:"
MAX_DID_URL_CHARS: Final = 512
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def did_key_of(public_key: Ed25519PublicKey) -> str:
    """Return the did:key DID (``did:key:z6Mk...``) of an Ed25519 public key."""
    return _DID_KEY + multikey.encode_public_key(public_key)


def did_key_verification_method(public_key: Ed25519PublicKey) -> str:
    """Return the did:key verification method id (``did:key:z6Mk...#z6Mk...``) of a key."""
    encoded = multikey.encode_public_key(public_key)
    return f"{_DID_KEY}{encoded}#{encoded}"


def resolve_did_key(verification_method: str) -> Ed25519PublicKey:
    """Resolve a did:key Ed25519 verification method id to its public key, with no network."""
    if not isinstance(verification_method, str) or len(verification_method) > MAX_DID_URL_CHARS:
        raise KeyFormatError("verification method is not a did:key URL")
    did, _, fragment = verification_method.partition("#")
    if not did.startswith(_DID_KEY):
        raise KeyFormatError("verification method is not a did:key URL")
    encoded = did[len(_DID_KEY) :]
    # did:key names exactly one key, and its verification method fragment repeats it.
    if fragment != encoded:
        raise KeyFormatError("did:key fragment does not match the key")
    return multikey.decode_public_key(encoded)


def controller_of(verification_method: str) -> str:
    """Return the DID part of a DID URL (everything before ``#``)."""
    return verification_method.partition("#")[0]


def did_web_document_url(did: str) -> str:
    """Return the HTTPS URL where a did:web DID document is published."""
    if not did.startswith(_DID_WEB) or len(did) <= len(_DID_WEB):
        raise KeyFormatError(f"not a did:web DID: {did!r}")
    parts = [unquote(part) for part in did[len(_DID_WEB) :].split(":")]
    if len(parts) == 1:
        return f"https://{parts[0]}/.well-known/did.json"
    return "https://" + "/".join(parts) + "/did.json"


def did_document(
    did: str,
    keys: Mapping[str, Ed25519PublicKey],
    retired: Mapping[str, tuple[Ed25519PublicKey, dt.datetime | None]] | None = None,
) -> dict[str, Any]:
    """Return the DID document of an issuer whose keys are ``{kid: public key}``.

    ``retired`` keys (``{kid: (public key, retired at)}``) stay declared with the W3C Controlled
    Identifiers ``revoked`` property but leave ``assertionMethod``: a verifier can then say a
    credential was signed by a retired key instead of by an unknown one.
    """
    methods: list[dict[str, str]] = [
        {
            "id": f"{did}#{kid}",
            "type": "Multikey",
            "controller": did,
            "publicKeyMultibase": multikey.encode_public_key(key),
        }
        for kid, key in keys.items()
    ]
    # Rotated-out keys stay under assertionMethod: credentials they signed keep verifying.
    ids = [method["id"] for method in methods]
    for kid, (key, retired_at) in (retired or {}).items():
        methods.append(
            {
                "id": f"{did}#{kid}",
                "type": "Multikey",
                "controller": did,
                "publicKeyMultibase": multikey.encode_public_key(key),
                "revoked": format_timestamp(retired_at or _EPOCH),
            }
        )
    return {
        "@context": [DID_CONTEXT, MULTIKEY_CONTEXT],
        "id": did,
        "verificationMethod": methods,
        "assertionMethod": ids,
    }


def jwk_of(kid: str, key: Ed25519PublicKey) -> dict[str, str]:
    """Return the RFC 8037 OKP JWK of an Ed25519 public key, with its kid."""
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": _b64url(ed25519.public_bytes(key)),
        "kid": kid,
        "alg": "EdDSA",
        "use": "sig",
    }


def jwks(keys: Mapping[str, Ed25519PublicKey]) -> dict[str, Any]:
    """Return a JWK Set of the given ``{kid: public key}``."""
    return {"keys": [jwk_of(kid, key) for kid, key in keys.items()]}


def public_key_from_jwk(jwk: Mapping[str, Any]) -> Ed25519PublicKey:
    """Load an Ed25519 public key from an OKP JWK (RFC 8037); private members are refused."""
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise KeyFormatError("JWK is not an OKP Ed25519 key")
    if "d" in jwk:
        raise KeyFormatError("JWK carries a private key; publish only public keys")
    x = jwk.get("x")
    if not isinstance(x, str) or len(x) != 43:
        raise KeyFormatError("JWK x is not a base64url 32-byte value")
    try:
        raw = base64.urlsafe_b64decode(x + "=")
    except ValueError:
        raise KeyFormatError("JWK x is not base64url") from None
    if _b64url(raw) != x:
        raise KeyFormatError("JWK x is not canonical base64url")
    return ed25519.public_key_from_bytes(raw)


def jwk_thumbprint(key: Ed25519PublicKey) -> str:
    """Return the RFC 7638 JWK thumbprint (SHA-256, base64url) of an Ed25519 public key."""
    members = {"crv": "Ed25519", "kty": "OKP", "x": _b64url(ed25519.public_bytes(key))}
    text = json.dumps(members, separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(text.encode("ascii")).digest())


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
