"""The pages' only way to data: the public /v1 API, called in-process with the user's key.

A page handler makes the same HTTP calls a third party would (httpx over ASGI to this very
app), so the pages see exactly what the API allows, every call is authenticated, rate-limited
and audited as usual, and no page code touches the database.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import httpx
from starlette.types import ASGIApp

logger = logging.getLogger(__name__)


class ApiCallError(Exception):
    """A /v1 call answered with an RFC 9457 problem."""

    def __init__(self, status: int, code: str, detail: str | None) -> None:
        super().__init__(f"{status} {code}")
        self.status = status
        self.code = code
        self.detail = detail


class Gateway:
    """Calls the /v1 API of ``app`` as the consumer whose key is ``key`` (None: public calls)."""

    def __init__(self, app: ASGIApp, key: str | None, *, request_id: str | None = None) -> None:
        self._app = app
        self._headers: dict[str, str] = {}
        if key:
            self._headers["Authorization"] = f"Bearer {key}"
        if request_id:
            self._headers["X-Request-ID"] = request_id

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """The JSON answer of one call; ApiCallError with the problem's code if it failed."""
        transport = httpx.ASGITransport(app=self._app)
        async with httpx.AsyncClient(transport=transport, base_url="http://onehub.local") as client:
            response = await client.request(
                method, path, json=json, params=params, headers=self._headers
            )
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {}
            code = str(problem.get("code") or f"http_{response.status_code}")
            logger.info("page call %s %s answered %s %s", method, path, response.status_code, code)
            raise ApiCallError(response.status_code, code, problem.get("detail"))
        return response.json()

    async def get(self, path: str, **params: Any) -> Any:
        """GET ``path`` with query ``params``."""
        return await self.call("GET", path, params=params or None)

    async def post(self, path: str, body: Mapping[str, Any]) -> Any:
        """POST ``body`` as JSON to ``path``."""
        return await self.call("POST", path, json=body)
