"""GET /healthz."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter

from exchange.api.deps import SessionDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness and database reachability")
def healthz(session: SessionDep) -> dict[str, str]:
    session.execute(sa.text("SELECT 1"))
    return {"status": "ok"}
