"""Supervision (效能监督): freshness and quality cards per source."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Supervision (效能监督): freshness and quality cards per source.", no_args_is_help=True
)
