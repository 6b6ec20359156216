"""Errors of the license store, all under the one OneHub tree."""

from __future__ import annotations

from typing import Final

from catalog_schemas.errors import (
    ConflictError,
    FatalError,
    InvalidIdentifierError,
    NotFoundError,
    OneHubError,
    RetriableError,
    ValidationFailedError,
)

# The codes VerificationError may carry; a caller can branch on them, a client only sees them.
VERIFICATION_CODES: Final = frozenset(
    {
        "malformed",
        "unsupported_cryptosuite",
        "unknown_key",
        "bad_signature",
        "issuer_mismatch",
        "not_yet_valid",
        "expired",
        "unknown_license",
        "superseded",
        "cancelled",
        "suspended",
        "revoked",
        "retired_key",
        "status_list_invalid",
        "wrong_service_item",
        "wrong_consumer",
        "not_annotated",
    }
)


class VerificationError(OneHubError):
    """A credential or proof did not verify; ``code`` says why and nothing else leaks."""

    code = "verification_failed"
    http_status = 422

    def __init__(self, code: str, message: str | None = None) -> None:
        if code not in VERIFICATION_CODES:
            raise ValueError(f"unknown verification code {code!r}")
        super().__init__(message or f"verification failed: {code}", code=code)


class LicenseIdentifierError(InvalidIdentifierError):
    """A license identifier is malformed or its check character is wrong."""


class CanonicalizationError(ValidationFailedError):
    """A value cannot be written as RFC 8785 canonical JSON (NaN, huge int, lone surrogate...)."""

    code = "not_canonicalizable"


class UnsupportedAlgorithmError(FatalError):
    """A signer or key uses an algorithm the cryptosuite does not allow."""

    code = "unsupported_algorithm"


class UnknownLicenseTypeError(FatalError):
    """Issuance was given a license type or issuer with no identifier code in the catalog."""

    code = "license_type_unknown"


class LicenseNotFoundError(NotFoundError):
    """No license has the given identifier."""

    code = "license_not_found"


class CursorMovedBackError(ConflictError):
    """An issuance cursor was asked to move to an earlier version than it already holds."""

    code = "cursor_moved_back"


class SigningKeyError(FatalError):
    """A signing key is missing, not active, or cannot be decrypted with the given KEK."""

    code = "signing_key"


class ConcurrentIssuanceError(RetriableError):
    """Another process issued or changed the same license first; roll back and retry."""

    code = "concurrent_issuance"


class StatusListError(ValidationFailedError):
    """A status list or its bitstring is malformed, too long, or an index is out of range."""

    code = "status_list_malformed"


class StatusListNotFoundError(NotFoundError):
    """No status list of this purpose and id has been published."""

    code = "status_list_not_found"


class StatusTransitionError(ConflictError):
    """A status change is not allowed from the license's current status (e.g. revoked → valid)."""

    code = "license_status_transition"


class ConcurrentStatusChangeError(RetriableError):
    """Another change of the same license won the compare-and-swap; re-read and decide again."""

    code = "concurrent_status_change"
    http_status = 409


class AnnotationError(ValidationFailedError):
    """An annotated copy cannot be made as asked (e.g. it would outlive the license)."""

    code = "annotation_invalid"


class KeyFormatError(ValidationFailedError):
    """A key, multibase string, JWK or DID document is not in a form we accept."""

    code = "key_format"
