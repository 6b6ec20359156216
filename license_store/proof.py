"""Data Integrity proofs with the ``eddsa-jcs-2022`` cryptosuite (W3C vc-di-eddsa, §3.3).

hashData = SHA-256(JCS(proofConfig)) || SHA-256(JCS(document without proof)); the proof
configuration carries the document's ``@context``; proofValue = ``z`` + base58btc(Ed25519 sig).
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from catalog_schemas.errors import OneHubError, ValidationFailedError
from license_store import ed25519, multikey
from license_store.canonical import canonicalize, canonicalize_plain, scan
from license_store.error import CanonicalizationError, UnsupportedAlgorithmError, VerificationError
from license_store.signer import Signer
from license_store.timestamp import format_timestamp, parse_timestamp

PROOF_TYPE: Final = "DataIntegrityProof"
CRYPTOSUITE: Final = "eddsa-jcs-2022"
ASSERTION_METHOD: Final = "assertionMethod"
# A 64-byte signature is at most 88 base58 characters; anything longer is not ours to parse.
MAX_PROOF_VALUE_CHARS: Final = 90
MAX_VERIFICATION_METHOD_CHARS: Final = 512


def create_proof(
    document: Mapping[str, Any],
    *,
    signer: Signer,
    created: dt.datetime,
    proof_purpose: str = ASSERTION_METHOD,
) -> dict[str, Any]:
    """Return a copy of ``document`` with an eddsa-jcs-2022 ``proof`` added."""
    if "proof" in document:
        raise ValidationFailedError("document already has a proof; proof sets are not supported")
    if signer.algorithm != ed25519.ALGORITHM:
        raise UnsupportedAlgorithmError(f"{CRYPTOSUITE} signs with Ed25519, not {signer.algorithm}")
    unsecured = copy.deepcopy(dict(document))
    proof: dict[str, Any] = {
        "type": PROOF_TYPE,
        "cryptosuite": CRYPTOSUITE,
        "created": format_timestamp(created),
        "verificationMethod": signer.verification_method,
        "proofPurpose": proof_purpose,
    }
    if "@context" in unsecured:
        proof["@context"] = copy.deepcopy(unsecured["@context"])
    signature = signer.sign(hash_data(unsecured, proof))
    proof["proofValue"] = multikey.encode_base58btc(signature)
    return {**unsecured, "proof": proof}


def hash_data(
    unsecured: Mapping[str, Any], proof_config: Mapping[str, Any], *, plain: bool = False
) -> bytes:
    """Return the 64 bytes eddsa-jcs-2022 signs: proof-config hash, then document hash.

    ``plain=True`` says the caller has already scanned both (see ``canonical.scan``).
    """
    config = dict(proof_config)
    if "@context" in unsecured:
        config["@context"] = unsecured["@context"]
    encode = canonicalize_plain if plain else canonicalize
    return hashlib.sha256(encode(config)).digest() + hashlib.sha256(encode(unsecured)).digest()


def verify_proof(
    document: Mapping[str, Any],
    *,
    resolve_key: Callable[[str], Ed25519PublicKey],
    expected_purpose: str = ASSERTION_METHOD,
) -> None:
    """Verify the eddsa-jcs-2022 proof of a document; raise VerificationError on any failure."""
    if not isinstance(document, Mapping):
        raise VerificationError("malformed")
    try:
        # One walk bounds the document and tells whether the fast canonical form applies.
        plain = scan(document)
    except CanonicalizationError:
        raise VerificationError("malformed") from None
    proof = document.get("proof")
    if not isinstance(proof, Mapping):
        # Absent, or a list (a proof set or chain), which this verifier does not accept.
        raise VerificationError("malformed")
    if proof.get("type") != PROOF_TYPE or proof.get("cryptosuite") != CRYPTOSUITE:
        raise VerificationError("unsupported_cryptosuite")
    proof_value = proof.get("proofValue")
    method = proof.get("verificationMethod")
    if not isinstance(proof_value, str) or len(proof_value) > MAX_PROOF_VALUE_CHARS:
        raise VerificationError("malformed")
    if not isinstance(method, str) or not 0 < len(method) <= MAX_VERIFICATION_METHOD_CHARS:
        raise VerificationError("malformed")
    if proof.get("proofPurpose") != expected_purpose:
        raise VerificationError("malformed")
    for name in ("created", "expires"):
        if name in proof:
            try:
                parse_timestamp(proof[name])
            except ValidationFailedError:
                raise VerificationError("malformed") from None
    unsecured = {name: value for name, value in document.items() if name != "proof"}
    options = {name: value for name, value in proof.items() if name != "proofValue"}
    # vc-di-eddsa lets a document gain @context entries after signing; we require the exact
    # context that was signed, so what a holder is shown is what the issuer signed.
    if "@context" in options and options["@context"] != unsecured.get("@context"):
        raise VerificationError("bad_signature")
    # The proof configuration is hashed with the document's @context whether or not the proof
    # repeats it, so dropping proof.@context would not change the signed bytes. Creation always
    # writes it; requiring it makes every single-field change of a credential fail.
    if "@context" in unsecured and "@context" not in options:
        raise VerificationError("malformed")
    try:
        signature = multikey.decode_base58btc(proof_value, max_chars=MAX_PROOF_VALUE_CHARS)
    except OneHubError:
        raise VerificationError("malformed") from None
    if len(signature) != ed25519.SIGNATURE_SIZE:
        raise VerificationError("malformed")
    try:
        key = resolve_key(method)
    except VerificationError:
        raise
    except OneHubError:
        raise VerificationError("unknown_key") from None
    try:
        data = hash_data(unsecured, options, plain=plain)
    except CanonicalizationError:
        raise VerificationError("malformed") from None
    ed25519.verify(key, data, signature)


# A 64-byte value is below 58**88: forty-four digits in base 58**2.
_SIGNATURE_BYTES: Final = 64
_BASE: Final = 58**2
_DIGITS: Final = 44
# Rows per matrix product (the products run in the calling thread, see _one_blas_thread).
_ROWS: Final = 256


def encode_signatures(signatures: Sequence[bytes]) -> list[bytes]:
    """Return the multibase base58btc proof values (``z...``, ASCII) of many signatures at once.

    Equal to ``multikey.encode_base58btc`` one by one (the tests check it), several times
    faster for a batch: a signature is sum(byte_i * 256**i), so one matrix product by the
    base-58**2 digits of every 256**i gives each digit's sum (exact in float64: below 2**26),
    a few vectorized carry passes normalize them, and a table (small enough to stay in the
    CPU's cache) spells each digit as two characters. Values other than 64 bytes take the
    one-by-one path.
    """
    if not signatures or any(len(value) != _SIGNATURE_BYTES for value in signatures):
        return [multikey.encode_base58btc(value).encode("ascii") for value in signatures]
    out: list[bytes] = []
    with _one_blas_thread():
        for start in range(0, len(signatures), _ROWS):
            out += _encode_rows(signatures[start : start + _ROWS])
    return out


def _one_blas_thread() -> Any:
    """A context in which BLAS (numpy's matrix products) runs in the calling thread only.

    OpenBLAS splits a product this size across every core, and its worker threads then spin,
    waiting for more, for a while after it returns: on two cores they took a core from the
    issuing thread and the database (bench/issuance.py: process CPU 1.5 times wall time).
    """
    return _blas_controller().limit(limits=1, user_api="blas")


@lru_cache(maxsize=1)
def _blas_controller() -> Any:
    import numpy  # noqa: F401  (loaded first, so the controller finds its BLAS)
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _encode_rows(signatures: Sequence[bytes]) -> list[bytes]:
    import numpy as np  # here: verification never needs it

    powers, spelling = _tables()
    count = len(signatures)
    raw = np.frombuffer(b"".join(signatures), dtype=np.uint8).reshape(count, _SIGNATURE_BYTES)
    digits = raw.astype(np.float64) @ powers
    while True:
        # Integers below 2**53 divided by 58**2 and floored: exact in float64 (a correctly
        # rounded quotient cannot reach the next integer), and vectorized unlike int64 division.
        carry = np.floor(digits / _BASE)
        if not carry.any():
            break
        digits -= carry * _BASE
        # Below 58**88, so nothing carries out of the top digit.
        digits[:, 1:] += carry[:, :-1]
    width = 2 * _DIGITS
    text = spelling[digits[:, ::-1].astype(np.intp)].tobytes()
    out = []
    for n, value in enumerate(signatures):
        encoded = text[n * width : (n + 1) * width].lstrip(b"1")
        if not value[0]:
            # Leading zero bytes are written as "1"s (base58btc keeps them).
            encoded = b"1" * (len(value) - len(value.lstrip(b"\0"))) + encoded
        out.append(b"z" + encoded)
    return out


@lru_cache(maxsize=1)
def _tables() -> tuple[Any, Any]:
    """The base-58**2 digits of 256**(63 - i), and the two characters of every digit."""
    import numpy as np

    powers = np.zeros((_SIGNATURE_BYTES, _DIGITS), dtype=np.float64)
    for i in range(_SIGNATURE_BYTES):
        value = 256 ** (_SIGNATURE_BYTES - 1 - i)
        for j in range(_DIGITS):
            value, powers[i, j] = divmod(value, _BASE)
    digit = np.arange(_BASE)
    alphabet = np.frombuffer(_ALPHABET, dtype=np.uint8)
    spelling = alphabet[np.stack([digit // 58, digit % 58], axis=1)]
    return powers, spelling


_ALPHABET: Final = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
