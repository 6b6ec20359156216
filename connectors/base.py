"""What every connector yields and the protocol the pipeline drives it through."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple, Protocol

import pyarrow as pa

ROW_REF = "_row_ref"
"""Column added to every batch: where the row came from (``pk=<value>`` or ``<file>:<line>``)."""


class ReadBatch(NamedTuple):
    """One batch of source rows and the connector state reached after it."""

    batch: pa.RecordBatch
    state: dict[str, Any]


class Backlog(NamedTuple):
    """How far the committed state is behind the source, as far as the connector can tell."""

    source_watermark: Any = None
    """The newest watermark in the source now (SQL), or None."""
    lag: str | None = None
    """Human-readable distance: ``2 h 5 min`` (times), ``120`` (numbers), ``3 files``."""
    waiting: int | None = None
    """Rows (SQL) or files (file drop) not yet read; None if unknown."""
    unit: str = "rows"


class Connector(Protocol):
    """An incremental reader of one department source."""

    def read(self, state: dict[str, Any] | None) -> Iterator[ReadBatch]:
        """Yield batches after ``state`` (None: from the start), each with the state after it."""
        ...

    def finish(self, state: dict[str, Any]) -> None:
        """Tidy up once ``state`` is durably committed (the file drop archives its files)."""
        ...

    def backlog(self, state: dict[str, Any] | None) -> Backlog:
        """What the source holds beyond ``state`` (for ``onehub sources status``)."""
        ...
