"""GET /livez, GET /healthz and GET /metrics (Prometheus)."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Request, Response
from sqlalchemy.exc import SQLAlchemyError

from catalog_schemas.errors import RetriableError
from exchange.api.deps import SessionDep
from exchange.api.problem import responses
from exchange.api.telemetry import Metrics

router = APIRouter(tags=["health"])


@router.get("/livez", summary="Liveness of this process alone (no database)")
def livez() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/healthz", summary="Liveness and database reachability", responses=responses(503))
def healthz(session: SessionDep) -> dict[str, str]:
    try:
        session.execute(sa.text("SELECT 1"))
    except SQLAlchemyError:
        raise RetriableError(
            "the hub database is not reachable", code="database_unavailable"
        ) from None
    return {"status": "ok"}


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def metrics(request: Request) -> Response:
    collected: Metrics = request.app.state.metrics
    body, content_type = collected.render()
    return Response(body, media_type=content_type)
