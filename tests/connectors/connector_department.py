"""Department systems for the connector behaviour suite: one record model, many backends.

Each backend holds the same property-register records (the shipped ``dlr_title`` mapping plus an
``is_deleted`` flag) and changes them the way that kind of department does: a SQL system updates
rows in place (and bumps ``last_modified``), a file-drop department drops one export file per
change, a REST API serves its current records (filtered by ``since``). Values derive from
``(id, version)``, so a test rebuilds what the hub must end up with from the ids alone.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import hashlib
import hmac
import json
import os
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import openpyxl
import sqlalchemy as sa

from catalog_schemas.catalog import shipped_catalog
from catalog_schemas.model import Source
from connectors import DELETED, Connector, FileDropConnector, ReadBatch, apply_mapping
from connectors.connector import open_connector
from connectors.rest import RestSourceConnector, sign_message

T0 = dt.datetime(2016, 3, 23, 9, 0, 0)
COLUMNS = ["id", "bdcqzh", "qlrlx", "qlrzjh", "qlr", "zl", "mj", "yt", "dbsj", "last_modified"]
LATER = 10_000.0  # seconds: a file-drop clock long after every file was written
TOKEN = "s3cr3t-token"
HMAC_KEY, HMAC_SECRET = "dlr-hub", "hmac-secret-1"
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def resident_id(i: int) -> str:
    """A valid GB 11643 number of someone born 1990-01-01 in Tianhe district (i < 1000)."""
    body = f"44010619900101{i % 1000:03d}"
    total = sum(int(c) * w for c, w in zip(body, _WEIGHTS, strict=True))
    return body + "10X98765432"[total % 11]


@dataclass(frozen=True)
class Rec:
    """One record of the department; ``version`` changes every value but the keys."""

    id: int
    version: int
    modified: dt.datetime
    deleted: bool = False

    def values(self) -> dict[str, Any]:
        i, v = self.id, self.version
        return {
            "id": i,
            "bdcqzh": cert_no(i),
            "qlrlx": "1",
            "qlrzjh": resident_id(i),
            "qlr": f"权利人{i}号v{v}",
            "zl": f"广州市天河区测试路{i}号",
            "mj": decimal.Decimal(f"{50 + i}.{v:02d}"),
            "yt": ["10", "20", "30", "40"][i % 4],
            "dbsj": dt.date(2016, 1, 1) + dt.timedelta(days=i),
            "last_modified": self.modified,
            "is_deleted": self.deleted,
        }

    def text(self) -> dict[str, str]:
        """The values as an export file writes them."""
        out = {}
        for k, value in self.values().items():
            if isinstance(value, bool):
                out[k] = "1" if value else "0"
            elif isinstance(value, dt.datetime | dt.date):
                out[k] = value.isoformat()
            else:
                out[k] = str(value)
        return out


def cert_no(i: int) -> str:
    return f"粤(2016)广州市不动产权第{i:07d}号"


def owner_name(rec: Rec) -> str:
    return f"权利人{rec.id}号v{rec.version}"


def base_source(batch_size: int, **connector: Any) -> Source:
    """The shipped dlr_title source with a soft-delete flag and the given connector."""
    shipped = shipped_catalog().source("dlr_title")
    data = shipped.model_dump(by_alias=True, exclude_none=True)
    data["connector"] = {
        "batch_size": batch_size,
        "soft_delete": {"flag": "is_deleted"},
        **connector,
    }
    return Source.model_validate(data)


class Department:
    """A department system of one kind; subclasses say how records reach the hub."""

    kind = "?"

    def source(self, batch_size: int) -> Source:
        raise NotImplementedError

    def location(self) -> str:
        raise NotImplementedError

    def write(self, recs: list[Rec]) -> None:
        """Insert or replace ``recs`` (a deleted one carries ``deleted=True``)."""
        raise NotImplementedError

    def connector(self, src: Source) -> Connector:
        return open_connector(src, location=self.location())

    def close(self) -> None:
        """Release what the department holds open."""


# -- SQL ---------------------------------------------------------------------------------------

_metadata = sa.MetaData()
_register = sa.Table(
    "property_register",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("bdcqzh", sa.String(64)),
    sa.Column("qlrlx", sa.String(4)),
    sa.Column("qlrzjh", sa.String(32)),
    sa.Column("qlr", sa.String(128)),
    sa.Column("zl", sa.String(256)),
    sa.Column("mj", sa.Numeric(12, 2)),
    sa.Column("yt", sa.String(4)),
    sa.Column("dbsj", sa.Date),
    sa.Column("last_modified", sa.DateTime, nullable=True),
    sa.Column("is_deleted", sa.Boolean, nullable=False, default=False),
    sa.Index("ix_register_keyset", "last_modified", "id"),
)


class SqlDepartment(Department):
    def __init__(self, url: str, kind: str) -> None:
        self.kind = kind
        self.url = url
        self.engine = sa.create_engine(url)
        _metadata.create_all(self.engine)

    def source(self, batch_size: int) -> Source:
        return base_source(
            batch_size,
            kind="sql",
            connection="dlr_registry",
            table="property_register",
            primary_key="id",
            watermark="last_modified",
        )

    def location(self) -> str:
        return self.url

    def write(self, recs: list[Rec]) -> None:
        with self.engine.begin() as conn:
            ids = [r.id for r in recs]
            conn.execute(_register.delete().where(_register.c.id.in_(ids)))
            conn.execute(_register.insert(), [r.values() for r in recs])

    def close(self) -> None:
        self.engine.dispose()


# -- files -------------------------------------------------------------------------------------

FILE_CASES = [
    ("csv", "utf-8"),
    ("csv", "utf-8-sig"),
    ("csv", "gbk"),
    ("csv", "gb18030"),
    ("tsv", "utf-8"),
    ("tsv", "utf-8-sig"),
    ("tsv", "gbk"),
    ("tsv", "gb18030"),
    ("jsonl", "utf-8"),
    ("jsonl", "utf-8-sig"),
    ("jsonl", "gbk"),
    ("jsonl", "gb18030"),
    ("xlsx", "-"),
]


class FileDepartment(Department):
    """One export file per change, in a drop folder; encodings declared ``auto`` half the time."""

    def __init__(self, folder: Path, fmt: str, encoding: str) -> None:
        self.kind = f"{fmt}-{encoding}"
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.format = fmt
        self.encoding = encoding
        self.files = 0

    def source(self, batch_size: int) -> Source:
        declared = "auto" if self.encoding in ("utf-8-sig", "gb18030", "-") else self.encoding
        extra: dict[str, Any] = {}
        if self.format == "xlsx":
            extra = {"sheet": "登记簿", "header_row": 2}
        return base_source(
            batch_size,
            kind="file",
            connection="dlr_drop",
            pattern=f"*.{self.format}",
            format=self.format,
            encoding=declared,
            primary_key="id",
            **extra,
        )

    def location(self) -> str:
        return str(self.folder)

    def connector(self, src: Source) -> Connector:
        return FileDropConnector(src, location=self.folder, clock=lambda: time.time() + LATER)

    def write(self, recs: list[Rec]) -> None:
        self.files += 1
        path = self.folder / f"export-{self.files:04d}.{self.format}"
        self._write(path, recs)
        # Written an hour ago as far as the file drop's "not growing any more" check can tell.
        past = time.time() - 3600
        os.utime(path, (past, past))

    def _write(self, path: Path, recs: list[Rec]) -> None:
        rows = [r.text() for r in recs]
        header = [*COLUMNS, "is_deleted"]
        if self.format == "xlsx":
            book = openpyxl.Workbook()
            book.active.title = "说明"
            book.active.append(["本文件由不动产登记系统导出"])
            sheet = book.create_sheet("登记簿")
            sheet.append(["不动产登记簿导出"])  # a title row, then a blank row: header_row 2
            sheet.append([])
            sheet.append(header)
            for row in rows:
                # numbers as Excel numbers, the date as a date cell: what real exports hold
                cells: list[Any] = [row[h] for h in header]
                cells[0] = int(cells[0])
                cells[header.index("mj")] = float(cells[header.index("mj")])
                cells[header.index("dbsj")] = dt.date.fromisoformat(row["dbsj"])
                sheet.append(cells)
            book.save(path)
            return
        if self.format == "jsonl":
            text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        else:
            sep = "\t" if self.format == "tsv" else ","
            lines = [sep.join(header)] + [sep.join(r[h] for h in header) for r in rows]
            text = "\r\n".join(lines) + "\r\n"
        path.write_bytes(text.encode(self.encoding))


# -- REST --------------------------------------------------------------------------------------

REST_CASES = ["page", "offset", "cursor", "next_link"]


@dataclass
class Api:
    """The state of the department's API: its records and what it should do next."""

    records: dict[int, dict[str, Any]] = field(default_factory=dict)
    auth: str = "bearer"
    failures: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


class _Handler(BaseHTTPRequestHandler):
    api: Api

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test output should show only what fails."""

    def do_GET(self) -> None:
        api = self.api
        with api.lock:
            api.requests.append(self.path)
            failure = api.failures.pop(0) if api.failures else None
        if failure is not None:
            status, headers = failure
            self._send(status, {"error": "unavailable"}, headers)
            return
        if not self._authorised():
            self._send(401, {"error": "unauthorised"})
            return
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with api.lock:
            # Served in id order, not by last_modified: the connector must not rely on the order.
            rows = [api.records[k] for k in sorted(api.records)]
        since = query.get("since")
        if since:
            rows = [r for r in rows if r["last_modified"] >= since]
        size = int(query.get("size", "3"))
        if parts.path == "/api/titles/page":
            page = int(query.get("page", "1"))
            self._send(200, {"data": rows[(page - 1) * size : page * size]})
        elif parts.path == "/api/titles/offset":
            offset = int(query.get("offset", "0"))
            self._send(200, {"result": {"items": rows[offset : offset + size]}})
        elif parts.path == "/api/titles/cursor":
            raw = query.get("cursor")
            offset = int(base64.urlsafe_b64decode(raw).decode()) if raw else 0
            chunk = rows[offset : offset + size]
            more = offset + size < len(rows)
            token = base64.urlsafe_b64encode(str(offset + size).encode()).decode()
            self._send(200, {"data": chunk, "meta": {"next_cursor": token if more else None}})
        elif parts.path == "/api/titles/next_link":
            offset = int(query.get("at", "0"))
            chunk = rows[offset : offset + size]
            headers = {}
            if offset + size < len(rows):
                nxt = dict(query, at=str(offset + size))
                headers["Link"] = f'</api/titles/next_link?{urlencode(nxt)}>; rel="next"'
            self._send(200, chunk, headers)
        else:
            self._send(404, {"error": "no such endpoint"})

    def _authorised(self) -> bool:
        if self.api.auth == "bearer":
            return self.headers.get("Authorization") == f"Bearer {TOKEN}"
        if self.api.auth == "hmac":
            stamp = self.headers.get("X-Timestamp", "")
            expected = hmac.new(
                HMAC_SECRET.encode(), sign_message("GET", self.path, stamp, b""), hashlib.sha256
            ).hexdigest()
            fresh = stamp.isdigit() and abs(time.time() - int(stamp)) < 300
            return (
                fresh
                and self.headers.get("X-Key-Id") == HMAC_KEY
                and hmac.compare_digest(self.headers.get("X-Signature", ""), expected)
            )
        return True

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class ApiServer:
    """A real HTTP server on 127.0.0.1 (an ephemeral port) serving :class:`Api` in a thread."""

    def __init__(self, api: Api) -> None:
        handler = type("Handler", (_Handler,), {"api": api})
        self.api = api
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


class RestDepartment(Department):
    def __init__(self, style: str, *, auth: str = "bearer") -> None:
        self.kind = f"rest-{style}"
        self.style = style
        self.api = Api(auth=auth)
        self.server = ApiServer(self.api)

    def source(self, batch_size: int, **connector: Any) -> Source:
        paging: dict[str, Any] = {"style": self.style, "size_param": "size", "page_size": 3}
        records_path = {"page": "data", "offset": "result.items", "cursor": "data"}.get(
            self.style, ""
        )
        if self.style == "cursor":
            paging.update(cursor_path="meta.next_cursor", size_param=None)
        if self.style == "next_link":
            paging.update(next_path=None)
        spec: dict[str, Any] = {
            "kind": "rest",
            "connection": "dlr_api",
            "path": f"/api/titles/{self.style}",
            "params": {"size": "3"} if self.style in ("cursor", "next_link") else {},
            "records_path": records_path,
            "primary_key": "id",
            "watermark": "last_modified",
            "since_param": "since",
            "pagination": paging,
            "auth": self.api.auth,
            "backoff_seconds": 0.01,
            "max_backoff_seconds": 0.05,
            **connector,
        }
        return base_source(batch_size, **spec)

    def location(self) -> str:
        if self.api.auth == "hmac":
            return self.server.base.replace("://", f"://{HMAC_KEY}:{HMAC_SECRET}@")
        if self.api.auth == "bearer":
            return self.server.base.replace("://", f"://{TOKEN}@")
        return self.server.base

    def connector(self, src: Source) -> Connector:
        return RestSourceConnector(src, location=self.location(), sleep=lambda s: None)

    def write(self, recs: list[Rec]) -> None:
        with self.api.lock:
            for rec in recs:
                self.api.records[rec.id] = {k: _json_value(v) for k, v in rec.values().items()}

    def close(self) -> None:
        self.server.close()


# -- reading -----------------------------------------------------------------------------------


def run(dept: Department, src: Source, state: dict[str, Any] | None) -> list[ReadBatch]:
    """Every batch of one run, each state passed through JSON as the lake commit stores it."""
    return [ReadBatch(b, json.loads(json.dumps(s))) for b, s in dept.connector(src).read(state)]


@dataclass
class Mirror:
    """What the lake would hold: certificate number -> owner name, deletions applied."""

    rows: dict[str, str] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)

    def apply(self, src: Source, batches: list[ReadBatch]) -> None:
        lt = shipped_catalog().license_type(src.license_type)
        for read in batches:
            mapped = apply_mapping(read.batch, source=src, license_type=lt)
            assert all(not e for e in mapped.column("_errors").to_pylist()), mapped.column(
                "_errors"
            )
            for row in mapped.to_pylist():
                self.seen.append(row["certificate_no"])
                if row[DELETED]:
                    self.rows.pop(row["certificate_no"], None)
                else:
                    self.rows[row["certificate_no"]] = row["owner_name"]


def expected(truth: dict[int, Rec]) -> dict[str, str]:
    return {cert_no(r.id): owner_name(r) for r in truth.values() if not r.deleted}


def batch_rows(batches: list[ReadBatch]) -> int:
    return sum(b.batch.num_rows for b in batches)
