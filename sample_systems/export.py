"""Writing a source's rows where its department keeps them: a SQL table or a CSV drop file."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Final

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.schema import CreateTable

from sample_systems.table import Rendered

logger = logging.getLogger(__name__)

INSERT_CHUNK: Final = 20_000


def write_table(engine: sa.Engine, table: sa.Table, rendered: Rendered) -> None:
    """(Re)create ``table`` and bulk-insert the rows in one transaction; index after loading."""
    names = list(rendered.data)
    columns = [rendered.data[name] for name in names]
    with engine.begin() as conn:
        table.drop(conn, checkfirst=True)
        conn.execute(CreateTable(table))
        for start in range(0, rendered.n, INSERT_CHUNK):
            chunk = [col[start : start + INSERT_CHUNK] for col in columns]
            rows = [dict(zip(names, values, strict=True)) for values in zip(*chunk, strict=True)]
            conn.execute(table.insert(), rows)
        for index in table.indexes:
            index.create(conn)
    logger.info("wrote %d rows to table %s", rendered.n, table.name)


def insert_rows(conn: sa.Connection, table: sa.Table, data: dict[str, list[Any]]) -> None:
    """Insert rows given column-wise."""
    names = list(data)
    rows = [dict(zip(names, values, strict=True)) for values in zip(*data.values(), strict=True)]
    if rows:
        conn.execute(table.insert(), rows)


def write_csv(path: Path, rendered: Rendered, *, encoding: str) -> None:
    """One CSV file in ``encoding``; GBK exports come from Windows, so they get CRLF line ends."""
    frame = pd.DataFrame(
        {name: pd.Series(values, dtype=object) for name, values in rendered.data.items()}
    )
    codec = "gbk" if encoding == "auto" else encoding
    frame.to_csv(
        path,
        index=False,
        encoding=codec,
        lineterminator="\r\n" if codec in ("gbk", "gb18030") else "\n",
    )
    logger.info("wrote %d rows to %s", rendered.n, path.name)
