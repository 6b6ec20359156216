"""FastAPI dependencies: the hub, a database session, and the authenticated caller."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from exchange.consumer import authenticate
from exchange.hub import Hub
from exchange.model import Consumer


def get_hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


HubDep = Annotated[Hub, Depends(get_hub)]


def get_session(hub: HubDep) -> Iterator[Session]:
    with hub.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_caller(
    session: SessionDep, authorization: Annotated[str | None, Header()] = None
) -> Consumer:
    token = authorization.removeprefix("Bearer ").strip() if authorization else None
    return authenticate(session=session, presented=token)


CallerDep = Annotated[Consumer, Depends(get_caller)]
