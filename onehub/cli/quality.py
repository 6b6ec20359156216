"""Data-quality reports."""

from __future__ import annotations

import typer

app = typer.Typer(help="Data-quality reports.", no_args_is_help=True)
