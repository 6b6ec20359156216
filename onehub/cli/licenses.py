"""License status changes: revoke, suspend, reinstate."""

from __future__ import annotations

import typer

app = typer.Typer(help="License status changes: revoke, suspend, reinstate.", no_args_is_help=True)
