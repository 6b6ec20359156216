"""Quarantined rows: list, show, export, replay."""

from __future__ import annotations

import typer

app = typer.Typer(help="Quarantined rows: list, show, export, replay.", no_args_is_help=True)
