"""A drop folder: each complete file read once, in name order, then archived.

- **Complete files only.** If the folder holds any ``<name>.done`` marker (``a.csv.done`` for
  ``a.csv``), only files with a marker are read; otherwise a file is read once it has not been
  modified for ``min_age_seconds``. Names match ``pattern`` case-insensitively (Windows exports
  say ``.CSV``); ``*.done`` and ``*.reason.txt`` are never data.
- **Once.** A file is known by the SHA-256 of its bytes. State::

      {"done": [<sha256>, ...],
       "current": {"sha256": ..., "name": ..., "rows": <rows yielded>} | None}

  ``current`` lets a resumed run skip the rows of a half-read file it already yielded. A file with
  no data rows still yields one empty batch, so its state is committed and it gets archived.
- **Checked before read.** Each file is decoded and parsed in full before its first batch, so a
  bad file yields nothing rather than half its rows. An unreadable file (undecodable bytes, ragged
  rows, invalid JSON line, duplicate header names, a column the mapping reads missing from the
  header) moves to ``quarantine/`` with a
  ``<name>.reason.txt``; it is never deleted, and reading goes on with the next file.
- **Archived after commit.** :meth:`FileDropConnector.finish` moves the files whose hashes are
  in the committed state to ``archive/`` (with their ``.done`` markers).

Values are strings, as written. CSV/TSV are parsed by pyarrow (all columns as strings, empty
fields as ``""``); ``_row_ref`` is ``<file>:<line>``, the line counted as if no record spanned
lines and no line were blank. JSON Lines are parsed line by line (values as
:func:`connectors.cell.cell_text` renders them, columns in order of first appearance);
``_row_ref`` is the physical line. Encodings: utf-8, utf-8-sig, gbk, gb18030, or ``auto``
(a UTF-8 BOM means utf-8-sig, a GB18030 BOM gb18030, else utf-8 if the whole file decodes,
else gb18030). A leading BOM is dropped in every encoding.

XLSX files are read with openpyxl in read-only mode (rows streamed, never the whole workbook in
memory), from the sheet named ``sheet`` (default: the first). ``header_row`` rows are skipped
before the header; header cells must be distinct non-blank text, trailing blank header cells are
dropped; blank rows are skipped; a row with a value beyond the header is ragged. Values as
:func:`connectors.cell.cell_text` renders them (a date cell ``2016-03-23T00:00:00``, ``12.0``
as ``12``); ``_row_ref`` is ``<file>:<sheet row>``. ``encoding`` does not apply (the format is
UTF-8 XML inside a zip).
"""

from __future__ import annotations

import codecs
import fnmatch
import hashlib
import io
import json
import logging
import re
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from catalog_schemas.errors import FatalError
from catalog_schemas.model import FileConnector, Source
from connectors.base import ROW_REF, Backlog, ReadBatch
from connectors.cell import cell_text

logger = logging.getLogger(__name__)

ARCHIVE = "archive"
QUARANTINE = "quarantine"
_MARKER = ".done"
_REASON = ".reason.txt"
_CHUNK = 1 << 20
_UTF8_BOM = b"\xef\xbb\xbf"
_GB18030_BOM = b"\x84\x31\x95\x33"


class UnreadableFileError(FatalError):
    """A dropped file cannot be read; it is quarantined with ``reason``."""

    code = "file_unreadable"

    def __init__(self, reason: str, *, bad_encoding: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.bad_encoding = bad_encoding


@dataclass(frozen=True)
class _Layout:
    """What the check pass learned about a file."""

    encoding: str
    columns: tuple[str, ...]
    rows: int


class FileDropConnector:
    """Reads the files dropped in one folder; see the module docstring."""

    def __init__(
        self,
        source: Source,
        *,
        location: str | Path,
        min_age_seconds: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(source.connector, FileConnector):
            raise FatalError(
                f"source {source.name!r} is not a file-drop source", code="connector_kind"
            )
        self._source = source
        self._spec: FileConnector = source.connector
        self._folder = Path(location)
        self._min_age = min_age_seconds
        self._clock = clock
        self._hashes: dict[str, tuple[int, int, str]] = {}
        self.quarantined: list[Path] = []
        """Files moved to quarantine by this connector (where they are now)."""

    def read(self, state: dict[str, Any] | None) -> Iterator[ReadBatch]:
        """Yield the rows of every complete file not yet done, file by file in name order."""
        state = state or {}
        done: list[str] = list(state.get("done") or [])
        current: dict[str, Any] | None = state.get("current") or None
        for path in self._ready_files():
            sha = self._sha256(path)
            if sha in done:
                logger.info(
                    "source %s: %s was already read; skipping", self._source.name, path.name
                )
                continue
            try:
                layout = self._inspect(path)
            except UnreadableFileError as exc:
                self._quarantine(path, sha, exc.reason)
                continue
            skip = int(current["rows"]) if current and current.get("sha256") == sha else 0
            yield from self._file_batches(path, sha, layout, skip, done)
            done = [*done, sha]

    def finish(self, state: dict[str, Any]) -> None:
        """Move the files the committed ``state`` has fully read into ``archive/``."""
        done = set(state.get("done") or [])
        for path in self._candidates():
            if self._sha256(path) in done:
                target = self._move(path, self._folder / ARCHIVE)
                logger.info("source %s: archived %s", self._source.name, target.name)

    def backlog(self, state: dict[str, Any] | None) -> Backlog:
        """Complete files not yet read (``waiting``); files still being written are not counted."""
        done = set((state or {}).get("done") or [])
        waiting = [p for p in self._ready_files() if self._sha256(p) not in done]
        incomplete = len(self._candidates()) - len(self._ready_files())
        lag = f"{len(waiting)} file{'' if len(waiting) == 1 else 's'}" + (
            f" (+{incomplete} incomplete)" if incomplete else ""
        )
        return Backlog(source_watermark=None, lag=lag, waiting=len(waiting), unit="files")

    # -- which files -------------------------------------------------------------------------

    def _candidates(self) -> list[Path]:
        if not self._folder.is_dir():
            raise FatalError(
                f"source {self._source.name!r}: drop folder {self._folder} does not exist",
                code="drop_folder_missing",
            )
        pattern = self._spec.pattern.lower()
        return sorted(
            (
                p
                for p in self._folder.iterdir()
                if p.is_file()
                and not p.name.endswith((_MARKER, _REASON))
                and fnmatch.fnmatchcase(p.name.lower(), pattern)
            ),
            key=lambda p: p.name,
        )

    def _ready_files(self) -> list[Path]:
        candidates = self._candidates()
        names = {p.name for p in self._folder.iterdir()}
        if any(n.endswith(_MARKER) for n in names):
            ready = [p for p in candidates if p.name + _MARKER in names]
        else:
            now = self._clock()
            ready = [p for p in candidates if now - p.stat().st_mtime >= self._min_age]
        for path in sorted(set(candidates) - set(ready)):
            logger.info(
                "source %s: %s is not complete yet; leaving it", self._source.name, path.name
            )
        return ready

    def _sha256(self, path: Path) -> str:
        stat = path.stat()
        cached = self._hashes.get(path.name)
        if cached is not None and cached[:2] == (stat.st_size, stat.st_mtime_ns):
            return cached[2]
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
        sha = digest.hexdigest()
        self._hashes[path.name] = (stat.st_size, stat.st_mtime_ns, sha)
        return sha

    # -- reading -----------------------------------------------------------------------------

    def _inspect(self, path: Path) -> _Layout:
        """Decode and parse the whole file once; raise UnreadableFileError if it cannot be read."""
        layout = self._layout(path)
        # A header without a column the mapping reads would fail every batch of the file (and
        # every later run): the file cannot be read as this source, so it is quarantined.
        needed = [c.column for c in self._source.mapping.values() if c.column is not None]
        if self._spec.soft_delete is not None:
            needed.append(self._spec.soft_delete.column)
        missing = [c for c in dict.fromkeys(needed) if c not in layout.columns]
        if missing and (layout.rows or self._spec.format != "jsonl"):
            raise UnreadableFileError(f"missing_columns: the file has no {', '.join(missing)}")
        return layout

    def _layout(self, path: Path) -> _Layout:
        if self._spec.format == "xlsx":
            columns: tuple[str, ...] = ()
            rows = 0
            for number, values in self._xlsx_rows(path):
                if number == 0:
                    columns = _checked_columns(tuple(str(v) for v in values))
                else:
                    rows += 1
            return _Layout("xlsx", columns, rows)
        encodings = self._encodings(path)
        for i, encoding in enumerate(encodings):
            try:
                if self._spec.format == "jsonl":
                    keys: dict[str, None] = {}
                    rows = 0
                    for _, record in self._json_records(path, encoding):
                        keys.update(dict.fromkeys(record))
                        rows += 1
                    return _Layout(encoding, _checked_columns(tuple(keys)), rows)
                columns = self._csv_columns(path, encoding)
                rows = sum(
                    b.num_rows for b in self._raw_batches(path, _Layout(encoding, columns, 0))
                )
                return _Layout(encoding, columns, rows)
            except UnreadableFileError as exc:
                if not exc.bad_encoding or i == len(encodings) - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _encodings(self, path: Path) -> list[str]:
        if self._spec.encoding != "auto":
            return [self._spec.encoding]
        with path.open("rb") as fh:
            head = fh.read(4)
        if head.startswith(_UTF8_BOM):
            return ["utf-8-sig"]
        if head.startswith(_GB18030_BOM):
            return ["gb18030"]
        return ["utf-8", "gb18030"]

    def _csv_columns(self, path: Path, encoding: str) -> tuple[str, ...]:
        with path.open("rb") as raw:
            reader, _ = self._csv_reader(_Utf8Stream(raw, encoding), None)
            columns = tuple(reader.schema.names)
            reader.close()
        if len(set(columns)) != len(columns):
            raise UnreadableFileError("duplicate_columns: the header names a column twice")
        return _checked_columns(columns)

    def _raw_batches(self, path: Path, layout: _Layout) -> Iterator[pa.RecordBatch]:
        """The file's rows as string batches with ``_row_ref``, in whatever sizes parsing gives."""
        if self._spec.format == "jsonl":
            yield from self._json_batches(path, layout)
            return
        if self._spec.format == "xlsx":
            yield from self._xlsx_batches(path, layout)
            return
        first_line = self._spec.header_row + 2  # header_row lines skipped, then the header
        with path.open("rb") as raw:
            reader, invalid = self._csv_reader(_Utf8Stream(raw, layout.encoding), layout.columns)
            try:
                for batch in reader:
                    refs = pc.binary_join_element_wise(
                        pa.scalar(f"{path.name}:"),
                        pc.cast(
                            pa.array(np.arange(first_line, first_line + batch.num_rows)),
                            pa.string(),
                        ),
                        "",
                    )
                    first_line += batch.num_rows
                    yield batch.append_column(ROW_REF, refs)
            except pa.ArrowInvalid as exc:
                raise (UnreadableFileError(invalid[0]) if invalid else _parse_error(exc)) from None
            finally:
                reader.close()

    def _csv_reader(
        self, stream: _Utf8Stream, columns: tuple[str, ...] | None
    ) -> tuple[pacsv.CSVStreamingReader, list[str]]:
        """A streaming reader (all strings once ``columns`` is known) and its ragged rows."""
        invalid: list[str] = []

        def on_invalid_row(row: Any) -> str:
            # Never keep row.text: the row may hold an ID number, and reasons are written to disk.
            invalid.append(
                f"ragged_row: line {row.number}: expected {row.expected_columns} columns, "
                f"got {row.actual_columns}"
            )
            return "error"

        read_options = pacsv.ReadOptions(
            skip_rows=self._spec.header_row, use_threads=False, block_size=_CHUNK
        )
        parse_options = pacsv.ParseOptions(
            delimiter="\t" if self._spec.format == "tsv" else ",",
            invalid_row_handler=on_invalid_row,
        )
        convert_options = pacsv.ConvertOptions(
            column_types={name: pa.string() for name in columns} if columns else None
        )
        try:
            reader = pacsv.open_csv(
                stream,
                read_options=read_options,
                parse_options=parse_options,
                convert_options=convert_options,
            )
        except pa.ArrowInvalid as exc:
            raise (UnreadableFileError(invalid[0]) if invalid else _parse_error(exc)) from None
        return reader, invalid

    def _xlsx_rows(self, path: Path) -> Iterator[tuple[int, list[str | None]]]:
        """``(0, header)`` then ``(sheet row, values)`` of each non-blank row, checked."""
        import openpyxl  # imported on first use: only xlsx drops need it

        try:
            with warnings.catch_warnings():
                # openpyxl warns about styles and extensions it ignores; they do not matter here
                warnings.simplefilter("ignore")
                book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # any failure to open means the file is unreadable
            raise UnreadableFileError(
                f"bad_xlsx: cannot open the workbook ({type(exc).__name__})"
            ) from None
        try:
            sheet_name = self._spec.sheet
            if sheet_name is not None and sheet_name not in book.sheetnames:
                raise UnreadableFileError(
                    f"missing_sheet: no sheet named {sheet_name!r} "
                    f"(sheets: {', '.join(book.sheetnames)})"
                )
            if not book.sheetnames:
                raise UnreadableFileError("missing_sheet: the workbook has no sheet")
            sheet = book[sheet_name] if sheet_name is not None else book.worksheets[0]
            if not hasattr(sheet, "reset_dimensions"):
                raise UnreadableFileError("missing_sheet: the sheet is not a worksheet")
            # Exporters often write a wrong <dimension>; read what is there instead.
            sheet.reset_dimensions()
            width = 0
            try:
                for cells in sheet.iter_rows(min_row=self._spec.header_row + 1):
                    values = [_xlsx_text(c.value) for c in cells]
                    if not any(v not in (None, "") for v in values):
                        continue
                    number = next((c.row for c in cells if getattr(c, "row", None)), 0)
                    if not width:
                        while values and values[-1] in (None, ""):
                            values.pop()
                        if any(v is None or not v.strip() for v in values):
                            raise UnreadableFileError("bad_header: a header cell is blank")
                        if len(set(values)) != len(values):
                            raise UnreadableFileError(
                                "duplicate_columns: the header names a column twice"
                            )
                        width = len(values)
                        yield 0, values
                        continue
                    if any(v not in (None, "") for v in values[width:]):
                        raise UnreadableFileError(
                            f"ragged_row: row {number}: values beyond the {width} header columns"
                        )
                    yield number, (values + [None] * width)[:width]
            except UnreadableFileError:
                raise
            except Exception as exc:  # a corrupt sheet fails in many ways, all unreadable
                raise UnreadableFileError(
                    f"bad_xlsx: the sheet cannot be read ({type(exc).__name__})"
                ) from None
            if not width:
                raise UnreadableFileError("bad_header: the sheet has no header row")
        finally:
            book.close()

    def _xlsx_batches(self, path: Path, layout: _Layout) -> Iterator[pa.RecordBatch]:
        columns: list[list[str | None]] = [[] for _ in layout.columns]
        refs: list[str] = []

        def flush() -> pa.RecordBatch:
            arrays = [pa.array(values, pa.string()) for values in columns]
            arrays.append(pa.array(refs, pa.string()))
            batch = pa.RecordBatch.from_arrays(arrays, names=[*layout.columns, ROW_REF])
            for values in columns:
                values.clear()
            refs.clear()
            return batch

        for number, values in self._xlsx_rows(path):
            if number == 0:
                continue
            for column, value in zip(columns, values, strict=True):
                column.append(value)
            refs.append(f"{path.name}:{number}")
            if len(refs) >= self._spec.batch_size:
                yield flush()
        if refs:
            yield flush()

    def _json_records(self, path: Path, encoding: str) -> Iterator[tuple[int, dict[str, Any]]]:
        with path.open("rb") as raw:
            text = io.TextIOWrapper(io.BufferedReader(_Utf8Stream(raw, encoding)), encoding="utf-8")
            for number, line in enumerate(text, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise UnreadableFileError(f"bad_json: line {number}: {exc.msg}") from None
                if not isinstance(record, dict):
                    raise UnreadableFileError(f"bad_json: line {number}: not a JSON object")
                yield number, record

    def _json_batches(self, path: Path, layout: _Layout) -> Iterator[pa.RecordBatch]:
        columns: dict[str, list[str | None]] = {name: [] for name in layout.columns}
        refs: list[str] = []

        def flush() -> pa.RecordBatch:
            arrays = [pa.array(values, pa.string()) for values in columns.values()]
            arrays.append(pa.array(refs, pa.string()))
            batch = pa.RecordBatch.from_arrays(arrays, names=[*layout.columns, ROW_REF])
            for values in columns.values():
                values.clear()
            refs.clear()
            return batch

        for number, record in self._json_records(path, layout.encoding):
            for name, values in columns.items():
                values.append(cell_text(record.get(name)))
            refs.append(f"{path.name}:{number}")
            if len(refs) >= self._spec.batch_size:
                yield flush()
        if refs:
            yield flush()

    def _file_batches(
        self, path: Path, sha: str, layout: _Layout, skip: int, done: list[str]
    ) -> Iterator[ReadBatch]:
        """Batches of exactly ``batch_size`` rows (the last one shorter), each with its state."""
        size = self._spec.batch_size
        emitted = skip
        held: pa.RecordBatch | None = None  # one batch behind, so the last one is known as last
        for batch in _rechunk(self._raw_batches(path, layout), size, skip):
            if held is not None:
                emitted += held.num_rows
                current = {"sha256": sha, "name": path.name, "rows": emitted}
                yield ReadBatch(held, {"done": list(done), "current": current})
            held = batch
        if held is None:
            names = [*layout.columns, ROW_REF]
            held = pa.RecordBatch.from_arrays(
                [pa.array([], pa.string()) for _ in names], names=names
            )
        logger.info(
            "source %s: read %s (%d rows, %s)",
            self._source.name,
            path.name,
            layout.rows,
            layout.encoding,
        )
        yield ReadBatch(held, {"done": [*done, sha], "current": None})

    # -- moving files ------------------------------------------------------------------------

    def _quarantine(self, path: Path, sha: str, reason: str) -> None:
        target = self._move(path, self._folder / QUARANTINE)
        target.with_name(target.name + _REASON).write_text(
            f"source: {self._source.name}\nfile: {path.name}\nsha256: {sha}\nreason: {reason}\n",
            encoding="utf-8",
        )
        self.quarantined.append(target)
        logger.warning(
            "source %s: quarantined %s: %s",
            self._source.name,
            path.name,
            reason,
            extra={"source": self._source.name, "file": path.name},
        )

    def _move(self, path: Path, folder: Path) -> Path:
        """Move ``path`` (and its marker) into ``folder`` under a name not taken yet."""
        folder.mkdir(exist_ok=True)
        target = folder / path.name
        n = 1
        while target.exists():
            # A daily export often reuses its name: keep every copy.
            target = folder / f"{path.stem}.{n}{path.suffix}"
            n += 1
        path.replace(target)
        marker = path.with_name(path.name + _MARKER)
        if marker.exists():
            marker.replace(target.with_name(target.name + _MARKER))
        self._hashes.pop(path.name, None)
        return target


class _Utf8Stream(io.RawIOBase):
    """Decodes a byte stream strictly from ``encoding`` and hands it on as UTF-8, BOM dropped."""

    def __init__(self, raw: BinaryIO, encoding: str) -> None:
        super().__init__()
        self._raw = raw
        self._encoding = encoding
        self._decoder = codecs.getincrementaldecoder(encoding)("strict")
        self._pending = memoryview(b"")
        self._offset = 0
        self._started = False
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not len(self._pending) and not self._eof:
            chunk = self._raw.read(_CHUNK)
            self._eof = not chunk
            try:
                text = self._decoder.decode(chunk, final=self._eof)
            except UnicodeDecodeError as exc:
                raise UnreadableFileError(
                    f"bad_encoding: not valid {self._encoding} "
                    f"near byte {self._offset + exc.start}",
                    bad_encoding=True,
                ) from None
            self._offset += len(chunk)
            if text and not self._started:
                text = text.removeprefix("\ufeff")
                self._started = True
            self._pending = memoryview(text.encode("utf-8"))
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def _xlsx_text(value: Any) -> str | None:
    """A cell's text; a whole float (how Excel stores every number) without its ``.0``."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return cell_text(value)


def _checked_columns(columns: tuple[str, ...]) -> tuple[str, ...]:
    if ROW_REF in columns:
        raise UnreadableFileError(f"reserved_column: a column may not be called {ROW_REF}")
    return columns


def _rechunk(batches: Iterator[pa.RecordBatch], size: int, skip: int) -> Iterator[pa.RecordBatch]:
    """Re-cut ``batches`` into ``size`` rows each, after dropping the first ``skip`` rows."""
    buffer: list[pa.RecordBatch] = []
    buffered = 0
    for batch in batches:
        if skip:
            if batch.num_rows <= skip:
                skip -= batch.num_rows
                continue
            batch, skip = batch.slice(skip), 0
        buffer.append(batch)
        buffered += batch.num_rows
        while buffered >= size:
            combined = pa.concat_batches(buffer)
            yield combined.slice(0, size)
            rest = combined.slice(size)
            buffer, buffered = ([rest], rest.num_rows) if rest.num_rows else ([], 0)
    if buffered:
        yield pa.concat_batches(buffer)


_SAFE_MESSAGES = (
    re.compile(r"Empty CSV file"),
    re.compile(r"Row #\d+: Expected \d+ columns, got \d+"),
    re.compile(r"Expected \d+ columns, got \d+"),
)


def _parse_error(exc: pa.ArrowInvalid) -> UnreadableFileError:
    """A reason for a parse failure that carries no cell content (pyarrow quotes the bad row)."""
    for pattern in _SAFE_MESSAGES:
        found = pattern.search(str(exc))
        if found:
            return UnreadableFileError(f"bad_csv: {found.group(0)}")
    return UnreadableFileError("bad_csv: the file could not be parsed")
