"""ASGI entry point for uvicorn (``factory=True``): builds the app from the environment.

``onehub serve`` sets ``ONEHUB_API_WORKERS`` (so each worker enforces its share of a rate
limit) and, with several workers, ``PROMETHEUS_MULTIPROC_DIR`` (so /metrics adds up every
worker's counters).
"""

from __future__ import annotations

import dataclasses
import os

import sqlalchemy as sa
from fastapi import FastAPI
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from exchange.api.app import ApiConfig, create_app
from onehub.redaction import configure_logging
from onehub.settings import Settings, build_hub


class ApiSettings(BaseSettings):
    """Settings of the API process; each can be set as ``ONEHUB_API_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="ONEHUB_API_", extra="ignore")

    rate_limit: str = Field(
        default="100/second", description="Default per-consumer limit ('50/second;2000/minute')"
    )
    workers: int = Field(default=1, ge=1, description="uvicorn workers (set by onehub serve)")
    max_body_bytes: int = Field(default=256 * 1024, gt=0)
    audit_max_batch: int = Field(default=256, gt=0, le=10_000)
    threads: int = Field(
        default=16, ge=1, le=256, description="Calls served at once per worker (worker threads)"
    )


def make_app() -> FastAPI:
    """The exchange API for this process, from ONEHUB_* settings."""
    configure_logging()
    api = ApiSettings()
    settings = Settings()
    hub = build_hub(settings)
    if hub.engine.dialect.name != "sqlite":
        # One pooled connection per worker thread plus the audit writer, kept open: a pool that
        # overflows opens and closes a server connection per call, which costs more than the
        # call. No pre-ping either (a round trip per checkout); a dead connection fails one
        # call with 503 and is replaced.
        hub.engine.dispose()
        hub = dataclasses.replace(
            hub,
            engine=sa.create_engine(
                settings.hub_db_url,
                pool_size=api.threads + 2,
                max_overflow=api.threads,
                pool_pre_ping=False,
                pool_use_lifo=True,
            ),
        )
    config = ApiConfig(
        default_rate_limit=api.rate_limit,
        processes=api.workers,
        metrics_dir=os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None,
        max_body_bytes=api.max_body_bytes,
        audit_max_batch=api.audit_max_batch,
        threads=api.threads,
    )
    return create_app(hub, config)
