"""The exchange API: ``create_app(hub)`` builds the FastAPI application."""

from __future__ import annotations

from fastapi import FastAPI

from exchange.api import problem
from exchange.api.routes import catalog, health, keys, lookups, status_lists, supervision
from exchange.hub import Hub

DESCRIPTION = """
OneHub exchange API (广东省政务数据共享交换平台). Departments and intake systems (counters,
online hall, kiosks) look holders up by one number (一号申办) and receive signed e-licenses
(电子证照) as W3C Verifiable Credentials (Data Integrity, eddsa-jcs-2022) that verify offline.

Every call carries an API key (`Authorization: Bearer <key>`) and a purpose (用证事由);
ID numbers travel only in request bodies. Errors are RFC 9457 problem+json.
"""


def create_app(hub: Hub) -> FastAPI:
    """The API over ``hub``."""
    app = FastAPI(title="OneHub exchange", version="1", description=DESCRIPTION)
    app.state.hub = hub
    problem.install(app)
    for module in (lookups, keys, status_lists, supervision, catalog, health):
        app.include_router(module.router)
    return app
