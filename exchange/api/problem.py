"""RFC 9457 problem details: every error the API returns, in one place."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from catalog_schemas.errors import CatalogError, OneHubError

logger = logging.getLogger(__name__)

PROBLEM = "application/problem+json"


def problem(status: int, code: str, title: str, detail: str | None = None) -> JSONResponse:
    body = {
        "type": f"https://onehub.dev/problems/{code}",
        "title": title,
        "status": status,
        "code": code,
    }
    if detail:
        body["detail"] = detail
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def install(app: FastAPI) -> None:
    """Map OneHub errors, validation errors and HTTP errors to problem+json."""

    @app.exception_handler(OneHubError)
    async def _onehub(_request: Request, exc: OneHubError) -> JSONResponse:
        status = (
            404
            if isinstance(exc, CatalogError) and exc.code == "catalog_unknown_reference"
            else exc.http_status
        )
        if status >= 500:
            logger.error("request failed: %s (%s)", exc.code, type(exc).__name__)
            return problem(status, exc.code, "Internal error")
        return problem(status, exc.code, exc.code.replace("_", " "), exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # Say where the problem is, never echo the input (it may hold an ID number).
        fields = sorted(
            {".".join(str(p) for p in err["loc"][1:]) or "body" for err in exc.errors()}
        )
        return problem(
            422, "invalid_request", "Invalid request", "invalid or missing: " + ", ".join(fields)
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, f"http_{exc.status_code}", str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        logger.error("unexpected %s", type(exc).__name__)
        return problem(500, "internal_error", "Internal error")
