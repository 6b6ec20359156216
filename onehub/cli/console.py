"""Shared by the CLI modules: consoles, error exit, building the hub."""

from __future__ import annotations

from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from catalog_schemas.errors import OneHubError

console = Console()
err = Console(stderr=True)


def fail(exc: OneHubError) -> NoReturn:
    """Print a typed error and exit 1."""
    err.print(f"[bold red]error[/] \\[{exc.code}] {escape(exc.message)}")
    raise typer.Exit(code=1)


def build_hub(create_secrets: bool = False) -> Any:
    """The Hub built from the environment's settings."""
    from onehub.settings import Settings
    from onehub.settings import build_hub as build

    return build(Settings(), create_secrets=create_secrets)
