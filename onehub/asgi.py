"""ASGI entry point for uvicorn (``factory=True``): builds the app from the environment."""

from __future__ import annotations

from fastapi import FastAPI

from exchange.api.app import create_app
from onehub.redaction import configure_logging
from onehub.settings import Settings, build_hub


def make_app() -> FastAPI:
    configure_logging()
    return create_app(build_hub(Settings()))
