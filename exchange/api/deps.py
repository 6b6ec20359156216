"""FastAPI dependencies: the hub, a database session, the authenticated caller, the audit sink."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from exchange.access import AuditSink
from exchange.api.rate_limit import ConsumerRateLimiter
from exchange.audit import AuditWriter
from exchange.consumer import authenticate
from exchange.hub import Hub
from exchange.model import Consumer

# auto_error=False: a missing key is answered by our own 401 problem, not FastAPI's 403.
bearer = HTTPBearer(
    auto_error=False, bearerFormat="oh_<key id>_<secret>", description="Consumer API key"
)


def get_hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


HubDep = Annotated[Hub, Depends(get_hub)]


def get_session(request: Request) -> Iterator[Session]:
    """A session in autocommit mode: reads without BEGIN/ROLLBACK round trips."""
    sessions: sessionmaker[Session] = request.app.state.read_sessions
    with sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_write_session(hub: HubDep) -> Iterator[Session]:
    """A session in a transaction, for calls that change data together with their audit row."""
    with hub.sessions() as session:
        yield session


WriteSessionDep = Annotated[Session, Depends(get_write_session)]


def get_caller(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Consumer:
    """The consumer whose key the request carries, within its rate limit."""
    consumer = authenticate(
        session=session, presented=credentials.credentials if credentials else None
    )
    limiter: ConsumerRateLimiter = request.app.state.rate_limiter
    limiter.hit(consumer)
    return consumer


CallerDep = Annotated[Consumer, Depends(get_caller)]


def get_audit(request: Request) -> AuditSink:
    """Append an audit row and wait until it is durable."""
    writer: AuditWriter = request.app.state.audit_writer
    return writer.append


AuditDep = Annotated[AuditSink, Depends(get_audit)]


def get_request_id(request: Request) -> str | None:
    request_id: str | None = getattr(request.state, "request_id", None)
    return request_id


RequestIdDep = Annotated[str | None, Depends(get_request_id)]
