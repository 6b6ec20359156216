"""RFC 9457 problem details: every error the API returns, in one place.

A problem body holds a stable ``code``, a title and a detail written by our own code; never the
request's input (which may hold an ID number) and never a stack trace.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from catalog_schemas.errors import CatalogError, OneHubError
from exchange.access import RateLimitedError

logger = logging.getLogger(__name__)

PROBLEM: Final = "application/problem+json"
PROBLEM_REF: Final = {"$ref": "#/components/schemas/Problem"}
_DESCRIPTIONS: Final = {
    400: "The body is not JSON (invalid_json)",
    401: "No API key, or not a valid one (key_missing, key_invalid)",
    403: "Consumer disabled, call outside its scopes, or consent required",
    404: "Unknown license, consent or service item (or not shared with this consumer)",
    409: "Conflict with the current state (e.g. consent already revoked)",
    413: "Request body too large",
    422: "Invalid request; for an ID number the code names the failed check (id_length, "
    "id_charset, id_check_char, id_birth_date, id_region, uscc_...)",
    429: "Rate limit of this consumer reached; see Retry-After",
    503: "Database or audit log unavailable; retry",
}


def problem(
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A problem+json response."""
    body: dict[str, Any] = {
        "type": f"https://onehub.dev/problems/{code}",
        "title": title,
        "status": status,
        "code": code,
    }
    if detail:
        body["detail"] = detail
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


_FIELD_NAME: Final = re.compile(r"[a-z][a-z_]{0,39}")


def _location_part(part: object) -> str:
    if isinstance(part, int) or (isinstance(part, str) and _FIELD_NAME.fullmatch(part)):
        return str(part)
    return "<field>"


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries declaring problem+json bodies for ``statuses``."""
    return {
        status: {
            "description": _DESCRIPTIONS[status],
            "content": {PROBLEM: {"schema": PROBLEM_REF}},
        }
        for status in statuses
    }


def install(app: FastAPI) -> None:
    """Map OneHub errors, validation errors and HTTP errors to problem+json."""

    @app.exception_handler(OneHubError)
    async def _onehub(_request: Request, exc: OneHubError) -> JSONResponse:
        return onehub_problem(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # Say where the problem is, never echo the input (it may hold an ID number): a location
        # part that is not one of our field names (an unknown key the client sent) is masked.
        fields = sorted(
            {".".join(_location_part(p) for p in err["loc"][1:]) or "body" for err in exc.errors()}
        )
        return problem(
            422, "invalid_request", "Invalid request", "invalid or missing: " + ", ".join(fields)
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers) if exc.headers else None
        # FastAPI answers a body that is not JSON with a bare 400: give it a stable code.
        code = "invalid_json" if exc.status_code == 400 else f"http_{exc.status_code}"
        return problem(exc.status_code, code, str(exc.detail), None, headers)

    @app.exception_handler(OperationalError)
    async def _database(_request: Request, exc: OperationalError) -> JSONResponse:
        return database_problem(exc)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        return unexpected_problem(exc)


def onehub_problem(exc: OneHubError) -> JSONResponse:
    """The answer to a OneHubError: its status and stable code (500s without their detail)."""
    status = (
        404
        if isinstance(exc, CatalogError) and exc.code == "catalog_unknown_reference"
        else exc.http_status
    )
    if status >= 500 and status != 503:
        logger.error("request failed: %s (%s)", exc.code, type(exc).__name__)
        return problem(status, exc.code, "Internal error")
    headers = None
    if isinstance(exc, RateLimitedError):
        headers = {"Retry-After": str(exc.retry_after)}
    elif status == 503:
        headers = {"Retry-After": "1"}
    return problem(status, exc.code, exc.code.replace("_", " "), exc.message, headers)


def database_problem(exc: OperationalError) -> JSONResponse:
    """The database went away (a restart, a dropped connection): the pool replaces the
    connection, and the client may retry."""
    logger.warning("database unavailable: %s", type(exc.orig).__name__)
    return problem(503, "database_unavailable", "database unavailable", None, {"Retry-After": "1"})


def unexpected_problem(exc: Exception) -> JSONResponse:
    """A 500 that names no more than the exception's type (in the log, not the body)."""
    logger.error("unexpected %s", type(exc).__name__)
    return problem(500, "internal_error", "Internal error")
