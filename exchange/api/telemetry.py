"""Request ids, body size limit and Prometheus metrics, as one plain ASGI middleware.

Plain ASGI rather than Starlette's BaseHTTPMiddleware: that one costs a task and a stream per
request, which shows at thousands of requests a second.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID: Final = re.compile(rb"[A-Za-z0-9._-]{1,64}")
_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class Metrics:
    """The API's Prometheus metrics, registered in their own registry (one per app)."""

    def __init__(self, *, multiprocess_dir: str | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "onehub_http_requests",
            "HTTP requests answered, by route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "onehub_http_request_duration_seconds",
            "Time from request to the end of the response",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.audit_rows = Counter(
            "onehub_audit_rows", "Audit rows committed by this API", registry=self.registry
        )
        self.audit_commits = Counter(
            "onehub_audit_commits",
            "Audit group commits (rows / commits = mean batch size)",
            registry=self.registry,
        )

    def audit_committed(self, rows: int) -> None:
        """Count one group commit of ``rows`` audit rows."""
        self.audit_rows.inc(rows)
        self.audit_commits.inc()

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type (every worker's values in multiprocess mode)."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST


class Telemetry:
    """Give each request an id (``X-Request-ID``), bound its body, and measure it."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = ""
        length: int | None = None
        for name, value in scope["headers"]:
            if name == b"x-request-id" and REQUEST_ID.fullmatch(value):
                request_id = value.decode("ascii")
            elif name == b"content-length" and value.isdigit():
                length = int(value)
        request_id = request_id or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        received = 0
        limit = self.max_body_bytes

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, "request body too large")
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode("ascii")),
                ]
            await send(message)

        try:
            if length is not None and length > limit:
                await self._too_large(send_with_id)
            else:
                await self.app(scope, bounded_receive, send_with_id)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - started)

    @staticmethod
    async def _too_large(send: Send) -> None:
        body = (
            b'{"type":"https://onehub.dev/problems/http_413","title":"request body too large",'
            b'"status":413,"code":"http_413"}'
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
