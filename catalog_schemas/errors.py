"""The one exception tree of OneHub.

Every error carries a stable ``code`` and the HTTP status the API maps it to.
Classify by what the caller does next: retry (:class:`RetriableError`), stop
(:class:`FatalError`) or quarantine the row (:class:`RowRejectedError`).
"""

from __future__ import annotations


class OneHubError(Exception):
    """Root of every OneHub error."""

    code: str = "onehub_error"
    http_status: int = 500

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code


class RetriableError(OneHubError):
    """A transient failure: the same call may succeed later. The only thing retries catch."""

    code = "retriable"
    http_status = 503


class FatalError(OneHubError):
    """Stop: retrying will not help until someone changes something."""

    code = "fatal"
    http_status = 500


class RowRejectedError(OneHubError):
    """One input row is bad: quarantine it with ``reason`` and go on."""

    code = "row_rejected"
    http_status = 422

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message, code=reason)
        self.reason = reason


class CatalogError(FatalError):
    """The catalog YAML is invalid; the message names the file and field."""

    code = "catalog_invalid"


class InvalidIdentifierError(RowRejectedError):
    """An ID number or credit code failed a check; ``reason`` names which one."""

    http_status = 422


class NotFoundError(OneHubError):
    code = "not_found"
    http_status = 404


class AuthenticationError(OneHubError):
    code = "unauthenticated"
    http_status = 401


class PermissionDeniedError(OneHubError):
    code = "forbidden"
    http_status = 403


class ConflictError(OneHubError):
    code = "conflict"
    http_status = 409


class ValidationFailedError(OneHubError):
    """A request body is well-formed JSON but its content is not acceptable."""

    code = "invalid_request"
    http_status = 422
