"""The public keys a verifier trusts, by verification method id; built from the store or a file."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from catalog_schemas.errors import OneHubError
from license_store import did, multikey
from license_store.canonical import parse_json
from license_store.error import CanonicalizationError, KeyFormatError, VerificationError
from license_store.timestamp import parse_timestamp

MAX_KEY_FILE_BYTES: Final = 256 * 1024
MAX_KEYS: Final = 1000
_MULTIBASE_TYPES: Final = frozenset({"Multikey", "Ed25519VerificationKey2020"})
_JWK_TYPES: Final = frozenset({"JsonWebKey", "JsonWebKey2020"})


@dataclass(frozen=True)
class RetiredKey:
    """A key the issuer has retired: known, so a verifier can say so, but no longer trusted."""

    public_key: Ed25519PublicKey
    retired_at: dt.datetime | None


@dataclass(frozen=True)
class KeySet:
    """Trusted Ed25519 keys by verification method id; did:key only when asked for.

    ``retired`` keys still resolve, so a signature by one is checked as a signature (a forgery
    stays ``bad_signature``); callers then refuse it as ``retired_key`` (see :meth:`retired_at`).
    """

    keys: Mapping[str, Ed25519PublicKey] = field(default_factory=dict)
    resolve_did_key: bool = False
    retired: Mapping[str, RetiredKey] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", MappingProxyType(dict(self.keys)))
        object.__setattr__(self, "retired", MappingProxyType(dict(self.retired)))

    def resolve(self, verification_method: str) -> Ed25519PublicKey:
        """Return the public key of a verification method, or raise VerificationError."""
        key = self.keys.get(verification_method)
        if key is not None:
            return key
        retired = self.retired.get(verification_method)
        if retired is not None:
            return retired.public_key
        if self.resolve_did_key and verification_method.startswith("did:key:"):
            try:
                return did.resolve_did_key(verification_method)
            except KeyFormatError:
                raise VerificationError("unknown_key") from None
        raise VerificationError("unknown_key")

    def __call__(self, verification_method: str) -> Ed25519PublicKey:
        """Resolve like :meth:`resolve`, so a KeySet can be passed as ``resolve_key``."""
        return self.resolve(verification_method)

    def is_retired(self, verification_method: str) -> bool:
        """Whether the method names a key its issuer has retired (and it is not trusted)."""
        return verification_method in self.retired and verification_method not in self.keys

    def retired_at(self, verification_method: str) -> dt.datetime | None:
        """When a retired key was retired (None if unknown or not retired)."""
        retired = self.retired.get(verification_method)
        return None if retired is None else retired.retired_at

    def merged(self, other: KeySet) -> KeySet:
        """Return a key set trusting the keys of both (a key retired in either stays retired)."""
        retired = {**self.retired, **other.retired}
        return KeySet(
            {k: v for k, v in {**self.keys, **other.keys}.items() if k not in retired},
            resolve_did_key=self.resolve_did_key or other.resolve_did_key,
            retired=retired,
        )

    @classmethod
    def did_key(cls) -> KeySet:
        """Return a key set that trusts nothing but resolves did:key keys."""
        return cls({}, resolve_did_key=True)

    @classmethod
    def from_keys(
        cls,
        controller: str,
        keys: Mapping[str, Ed25519PublicKey],
        retired: Mapping[str, RetiredKey] | None = None,
    ) -> KeySet:
        """Return the key set of one issuer DID given ``{kid: public key}`` (and retired kids)."""
        return cls(
            {f"{controller}#{kid}": key for kid, key in keys.items()},
            retired={f"{controller}#{kid}": key for kid, key in (retired or {}).items()},
        )

    @classmethod
    def from_jwks(cls, jwks: Mapping[str, Any], *, controller: str) -> KeySet:
        """Build from a JWK Set whose kids are fragments of ``controller`` (the issuer DID)."""
        entries = jwks.get("keys")
        if not isinstance(entries, list) or len(entries) > MAX_KEYS:
            raise KeyFormatError("JWKS has no 'keys' list")
        keys: dict[str, Ed25519PublicKey] = {}
        for jwk in entries:
            if not isinstance(jwk, Mapping):
                raise KeyFormatError("JWKS entry is not an object")
            if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
                continue  # A JWKS may publish keys of other algorithms; they cannot sign ours.
            kid = jwk.get("kid")
            if not isinstance(kid, str) or not kid:
                raise KeyFormatError("Ed25519 JWK has no kid")
            keys[f"{controller}#{kid}"] = did.public_key_from_jwk(jwk)
        if not keys:
            raise KeyFormatError("JWKS holds no Ed25519 key")
        return cls(keys)

    @classmethod
    def from_did_document(cls, document: Mapping[str, Any]) -> KeySet:
        """Build from a DID document, trusting the keys listed under ``assertionMethod``."""
        subject = document.get("id")
        methods = document.get("verificationMethod", [])
        assertion = document.get("assertionMethod")
        if not isinstance(subject, str) or not subject.startswith("did:"):
            raise KeyFormatError("DID document has no DID 'id'")
        if not isinstance(methods, list) or not isinstance(assertion, list):
            raise KeyFormatError("DID document needs verificationMethod and assertionMethod lists")
        if len(methods) + len(assertion) > MAX_KEYS:
            raise KeyFormatError("DID document lists too many keys")
        declared = {_absolute(subject, m.get("id")): m for m in methods if isinstance(m, Mapping)}
        keys: dict[str, Ed25519PublicKey] = {}
        retired: dict[str, RetiredKey] = {}
        for item in assertion:
            # assertionMethod holds references to verificationMethod entries or embeds them.
            method = item if isinstance(item, Mapping) else declared.get(_absolute(subject, item))
            if method is None:
                raise KeyFormatError("assertionMethod names a key the document does not declare")
            method_id = _absolute(subject, method.get("id"))
            if method.get("controller", subject) != subject:
                raise KeyFormatError("verification method is controlled by another DID")
            if "revoked" in method:
                retired[method_id] = RetiredKey(_method_key(method), _revoked(method))
            else:
                keys[method_id] = _method_key(method)
        # A key with ``revoked`` (W3C Controlled Identifiers) is no longer usable for assertions,
        # but a verifier can still name it, so say "retired key" instead of "unknown key".
        for method_id, method in declared.items():
            if "revoked" in method and method_id not in retired and method_id not in keys:
                if method.get("controller", subject) != subject:
                    continue
                retired[method_id] = RetiredKey(_method_key(method), _revoked(method))
        if not keys and not retired:
            raise KeyFormatError("DID document has no assertionMethod key")
        return cls(keys, retired=retired)

    @classmethod
    def from_file(cls, path: Path | str, *, controller: str | None = None) -> KeySet:
        """Read a DID document or (with ``controller``) a JWKS JSON file."""
        path = Path(path)
        if path.stat().st_size > MAX_KEY_FILE_BYTES:
            raise KeyFormatError(f"key file is larger than {MAX_KEY_FILE_BYTES} bytes")
        try:
            document = parse_json(path.read_bytes(), max_bytes=MAX_KEY_FILE_BYTES)
        except CanonicalizationError as exc:
            raise KeyFormatError(f"key file is not valid JSON: {exc.message}") from None
        if not isinstance(document, dict):
            raise KeyFormatError("key file is not a JSON object")
        if "keys" in document:
            if controller is None:
                raise KeyFormatError("a JWKS file needs the issuer DID (controller) to go with it")
            return cls.from_jwks(document, controller=controller)
        if "verificationMethod" in document:
            return cls.from_did_document(document)
        raise KeyFormatError("key file is neither a JWKS nor a DID document")


def _revoked(method: Mapping[str, Any]) -> dt.datetime | None:
    try:
        return parse_timestamp(method.get("revoked"))
    except OneHubError:
        raise KeyFormatError("verification method 'revoked' is not a dateTimeStamp") from None


def _absolute(subject: str, method_id: object) -> str:
    if not isinstance(method_id, str) or not method_id:
        raise KeyFormatError("verification method has no id")
    return subject + method_id if method_id.startswith("#") else method_id


def _method_key(method: Mapping[str, Any]) -> Ed25519PublicKey:
    kind = method.get("type")
    if kind in _MULTIBASE_TYPES:
        value = method.get("publicKeyMultibase")
        if not isinstance(value, str):
            raise KeyFormatError("verification method has no publicKeyMultibase")
        return multikey.decode_public_key(value)
    if kind in _JWK_TYPES:
        jwk = method.get("publicKeyJwk")
        if not isinstance(jwk, Mapping):
            raise KeyFormatError("verification method has no publicKeyJwk")
        return did.public_key_from_jwk(jwk)
    raise KeyFormatError(f"verification method type {kind!r} is not supported")
