"""The exchange API: ``create_app(hub)`` builds the FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from sqlalchemy.orm import sessionmaker
from starlette.types import Receive, Scope, Send

from exchange.api import problem
from exchange.api.deps import CallerCache
from exchange.api.hot import HotPath
from exchange.api.rate_limit import ConsumerRateLimiter
from exchange.api.routes import (
    catalog,
    consents,
    health,
    history,
    keys,
    licenses,
    lookups,
    status_lists,
    supervision,
)
from exchange.api.schemas import Problem
from exchange.api.telemetry import Metrics, Telemetry
from exchange.audit import AsyncAuditWriter, AuditWriter
from exchange.hub import Hub
from exchange.reader import PostgresReader, Reader, SessionReader

DESCRIPTION = """
OneHub exchange API (广东省政务数据共享交换平台). Departments and intake systems (counters,
online hall, kiosks) look holders up by one number (一号申办) and receive signed e-licenses
(电子证照) as W3C Verifiable Credentials (Data Integrity, eddsa-jcs-2022) that verify offline.

Every call on a holder's data carries an API key (`Authorization: Bearer <key>`) and a purpose
(用证事由), and is written to a hash-chained audit log before the answer leaves. ID numbers
travel only in request bodies. Errors are RFC 9457 problem+json with a stable `code`.
Send `X-Request-ID` to tie a call to its audit row (the API makes one up otherwise).
"""


class ExchangeApp(FastAPI):
    """The FastAPI app, with lookups and material checks taken first by the hot path."""

    hot: HotPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hot = self.hot
        if hot is not None and hot.take(scope):
            await hot(scope, receive, send, super().__call__)
        else:
            await super().__call__(scope, receive, send)


@dataclass(frozen=True)
class ApiConfig:
    """How the API runs; built by the composition root (onehub.asgi)."""

    default_rate_limit: str = "100/second"
    # uvicorn worker processes: each enforces 1/processes of a consumer's rate limit.
    processes: int = 1
    # Set when uvicorn runs several workers: PROMETHEUS_MULTIPROC_DIR of the deployment.
    metrics_dir: str | None = None
    max_body_bytes: int = 256 * 1024
    audit_max_batch: int = 256
    # PostgreSQL: how long the audit writer may wait for the rows of calls under way, so they
    # share a commit (exchange.audit.AsyncAuditWriter).
    audit_gather_seconds: float = 0.002
    # Worker threads serving calls at once (anyio's default is 40); keep the database pool at
    # least this large.
    threads: int = 16
    # Serve lookups and material checks through exchange.api.hot (False: every request goes
    # through the framework; the answers are the same, tests/exchange/test_api_hot.py).
    hot_path: bool = True


def create_app(hub: Hub, config: ApiConfig | None = None) -> ExchangeApp:
    """The API over ``hub``."""
    config = config or ApiConfig()
    metrics = Metrics(multiprocess_dir=config.metrics_dir)
    writer: AuditWriter | AsyncAuditWriter = (
        AsyncAuditWriter(
            hub.engine,
            max_batch=config.audit_max_batch,
            on_commit=metrics.audit_committed,
            gather_seconds=config.audit_gather_seconds,
        )
        if hub.engine.dialect.name == "postgresql"
        else AuditWriter(
            hub.engine, max_batch=config.audit_max_batch, on_commit=metrics.audit_committed
        )
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = config.threads
        yield
        await reader.close()
        # What is queued is written before the process goes.
        if isinstance(writer, AsyncAuditWriter):
            await writer.close()
        else:
            writer.close()

    read_sessions = sessionmaker(
        hub.engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
    )
    reader: Reader = (
        PostgresReader.for_engine(hub.engine, max_size=config.threads)
        if hub.engine.dialect.name == "postgresql"
        else SessionReader(read_sessions)
    )
    app = ExchangeApp(
        title="OneHub exchange", version="1", description=DESCRIPTION, lifespan=lifespan
    )
    app.state.hub = hub
    app.state.read_sessions = read_sessions
    app.state.reader = reader
    app.state.callers = CallerCache()
    app.state.audit_writer = writer
    app.state.metrics = metrics
    app.state.rate_limiter = ConsumerRateLimiter(
        config.default_rate_limit, processes=config.processes
    )
    problem.install(app)
    for module in (
        lookups,
        licenses,
        consents,
        history,
        keys,
        status_lists,
        supervision,
        catalog,
        health,
    ):
        app.include_router(module.router)
    from exchange.web import install as install_pages  # the pages call the /v1 routes above

    install_pages(app)
    app.add_middleware(Telemetry, metrics=metrics, max_body_bytes=config.max_body_bytes)
    if config.hot_path:
        app.hot = HotPath(app.state, metrics, max_body_bytes=config.max_body_bytes)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            schemas["Problem"] = Problem.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            # Our 422s are problem+json (problem.py), not FastAPI's HTTPValidationError.
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    answers = operation.get("responses", {})
                    if "HTTPValidationError" in str(answers.get("422", "")):
                        answers["422"] = problem.responses(422)[422]
            for name in ("HTTPValidationError", "ValidationError"):
                schemas.pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
