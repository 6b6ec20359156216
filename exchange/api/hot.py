"""Lookups and material checks served without the framework's layers: the API's hot path.

A lookup passed through Starlette's error and exception middlewares, the telemetry middleware,
the router's matching, FastAPI's dependency solving, the JSON module and pydantic before it
reached its own code: about a fifth of the server's CPU per lookup, measured under load
(bench/results/load.md). Here a request for ``POST /v1/lookups`` or ``POST /v1/material-checks``
whose body msgspec decodes into the structs below is answered by the same functions the routes
run (:func:`exchange.api.routes.lookups.run_lookup` and :func:`run_material_check`), with the
same request ids, metrics and problem answers.

Everything else goes to the FastAPI app, untouched, with the body already read handed on: a
request without a ``Bearer`` key, not ``application/json``, without a ``Content-Length``, over
the size limit, or whose body does not decode (not JSON, an unknown key, a missing field, a
wrong type, a length out of bounds, a date spelled otherwise than ``YYYY-MM-DD``). So every
answer to a malformed request is the framework's own; the hot path only ever answers requests
that the routes' pydantic models accept too (tests/exchange/test_api_hot.py compares both ways
over well-formed and malformed requests).
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Final, Literal

import msgspec
from prometheus_client.metrics import Counter, Histogram
from sqlalchemy.exc import OperationalError
from starlette.datastructures import State
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from catalog_schemas.errors import OneHubError
from exchange.api.problem import database_problem, onehub_problem, unexpected_problem
from exchange.api.routes.lookups import run_lookup, run_material_check
from exchange.api.telemetry import REQUEST_ID, Metrics

Purpose = Annotated[str, msgspec.Meta(min_length=2, max_length=256)]
Code = Annotated[str, msgspec.Meta(max_length=64)]
IdNumber = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Kind = Literal["natural_person", "legal_person"]


class LookupBody(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """schemas.LookupRequest, as msgspec decodes it (the same fields and bounds)."""

    id_number: IdNumber
    purpose: Purpose
    holder_kind: Kind | None = None
    service_item: Code | None = None
    restricted_until: dt.date | None = None


class MaterialCheckBody(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """schemas.MaterialCheckRequest, as msgspec decodes it."""

    id_number: IdNumber
    purpose: Purpose
    service_item: Code
    holder_kind: Kind | None = None
    restricted_until: dt.date | None = None


Runner = Callable[[State, Any, str | None, str | None], Awaitable[Any]]
_JSON_HEADERS: Final = [(b"content-type", b"application/json")]


class _Route:
    def __init__(self, path: str, decoder: msgspec.json.Decoder[Any], run: Runner) -> None:
        self.path = path
        self.decoder = decoder
        self.run = run


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` that first gives back the messages already read."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


class HotPath:
    """Answers the two hot calls of one app; :meth:`take` says whether a request is one."""

    def __init__(self, state: State, metrics: Metrics, *, max_body_bytes: int) -> None:
        self._state = state
        self._max_body = max_body_bytes
        self._routes = {
            "/v1/lookups": _Route("/v1/lookups", msgspec.json.Decoder(LookupBody), run_lookup),
            "/v1/material-checks": _Route(
                "/v1/material-checks",
                msgspec.json.Decoder(MaterialCheckBody),
                run_material_check,
            ),
        }
        self._metrics = metrics
        self._counters: dict[tuple[str, int], Counter] = {}
        self._latency: dict[str, Histogram] = {}
        self.served = 0  # requests answered here (the rest went to the framework)

    def take(self, scope: Scope) -> bool:
        """Whether ``scope`` is a request for one of the hot calls."""
        return (
            scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in self._routes
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> None:
        """Serve the request, or hand it to ``app`` (the framework) with its body."""
        started = time.perf_counter()
        route = self._routes[scope["path"]]
        presented: str | None = None
        length: int | None = None
        json_body = False
        request_id = ""
        for name, value in scope["headers"]:
            if name == b"authorization":
                if value[:7] == b"Bearer " and len(value) > 7:
                    presented = value[7:].decode("latin-1")
            elif name == b"content-type":
                json_body = value.split(b";", 1)[0].strip().lower() == b"application/json"
            elif name == b"content-length":
                length = int(value) if value.isdigit() else None
            elif name == b"x-request-id" and REQUEST_ID.fullmatch(value):
                request_id = value.decode("ascii")
        if presented is None or not json_body or length is None or length > self._max_body:
            await app(scope, receive, send)
            return
        messages: list[Message] = []
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                await app(scope, _replaying(messages, receive), send)  # a disconnect
                return
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            if size > self._max_body:
                await app(scope, _replaying(messages, receive), send)
                return
            if not message.get("more_body", False):
                break
        try:
            body = route.decoder.decode(b"".join(chunks))
        except msgspec.MsgspecError:
            await app(scope, _replaying(messages, receive), send)
            return
        self.served += 1
        request_id = request_id or uuid.uuid4().hex
        status, headers, payload = await self._answer(route, body, presented, request_id)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    *headers,
                    (b"content-length", str(len(payload)).encode("ascii")),
                    (b"x-request-id", request_id.encode("ascii")),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
        self._measure(route.path, status, time.perf_counter() - started)

    async def _answer(
        self, route: _Route, body: Any, presented: str, request_id: str
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        problem: Response
        try:
            content = await route.run(self._state, body, presented, request_id)
            return 200, _JSON_HEADERS, msgspec.json.encode(content)
        except OneHubError as exc:
            problem = onehub_problem(exc)
        except OperationalError as exc:
            problem = database_problem(exc)
        except Exception as exc:  # answered as the framework's 500 is, never raised
            problem = unexpected_problem(exc)
        headers = [(k, v) for k, v in problem.raw_headers if k != b"content-length"]
        return problem.status_code, headers, bytes(problem.body)

    def _measure(self, path: str, status: int, seconds: float) -> None:
        counter = self._counters.get((path, status))
        if counter is None:
            counter = self._counters[(path, status)] = self._metrics.requests.labels(
                "POST", path, str(status)
            )
        counter.inc()
        latency = self._latency.get(path)
        if latency is None:
            latency = self._latency[path] = self._metrics.latency.labels("POST", path)
        latency.observe(seconds)
