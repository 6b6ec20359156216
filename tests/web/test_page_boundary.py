"""The pages get their data only through the public /v1 API (issue 8): their code imports no
database, ORM or hub internals, only the web package itself and libraries."""

from __future__ import annotations

import ast
from pathlib import Path

import exchange.web

WEB = Path(exchange.web.__file__).parent
# What a page may not import: the database layer and every package that reaches it.
FORBIDDEN = (
    "sqlalchemy",
    "psycopg",
    "asyncpg",
    "exchange.",
    "license_store",
    "quality",
    "connectors",
    "onehub",
)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_page_code_imports_no_database_or_hub_module() -> None:
    modules = sorted(WEB.glob("*.py"))
    assert len(modules) >= 5
    offending = {
        f"{path.name}: {name}"
        for path in modules
        for name in _imports(path)
        if not name.startswith("exchange.web")
        and any(name == f.rstrip(".") or name.startswith(f) for f in FORBIDDEN)
    }
    assert not offending, offending
