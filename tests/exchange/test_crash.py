"""A run killed with SIGKILL at any point, then re-run, leaves the lake equal to the source.

Each case runs ``exchange.pipeline.ingest_source`` in a child process (forked from a
``python -c`` zygote that has done the slow imports once; ``_CHILD`` below is its code). The
child — test code only; production code has no crash hooks — wraps one library function so
that it kills itself with SIGKILL at the chosen point of the chosen batch, after leaving a
marker file that proves the point was reached. The
test then runs the same ingest in-process, twice, and compares the lake and the quarantine with
those of a clean run that was never interrupted: the same records with the same content, none
missing, none doubled, and the second re-run reads nothing.

Points: mid-read (inside the SQL page query, inside the CSV parse), after validation, mid
quarantine write (rows inserted, transaction open), after the quarantine commit, mid-merge (the
merge's data files written, its Delta log entry not), after the lake commit (run record not yet
updated), and after the last commit before ``finish`` (the file drop's archiving).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

from catalog_schemas.catalog import Catalog, shipped_catalog
from catalog_schemas.cipher import FieldCipher
from catalog_schemas.model import FileConnector
from exchange.hub import Hub
from exchange.lake import LakeTable
from exchange.pipeline import ingest_source
from onehub.database import create_schema
from quality.quarantine import QuarantineRow

NOW = dt.datetime(2026, 11, 27, 3, 0, tzinfo=dt.UTC)
HUB_KEY = "11" * 32
DATA_KEY = "22" * 32
BATCH = 40
REPO = Path(__file__).resolve().parents[2]

# The zygote imports the pipeline once (great_expectations alone takes seconds to import), then
# forks one child per case; each child builds the hub like the parent does, installs its crash
# point and runs the ingest. The zygote itself never touches a lake or a database, so the fork
# copies no open connection or runtime thread.
_ZYGOTE = r"""
import os, sys
from exchange import pipeline  # noqa: F401 - the expensive imports, done once

for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        sys.stdin.close()
        try:
            exec(CHILD, {"__name__": "crash_child", "CONFIG": line.strip()})
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(f"{os.waitstatus_to_exitcode(status)}\n")
    sys.stdout.flush()
"""

_CHILD = r"""
import dataclasses, datetime as dt, json, os, signal, sys, threading, time
from pathlib import Path

import sqlalchemy as sa

from catalog_schemas.catalog import shipped_catalog
from catalog_schemas.cipher import FieldCipher
from catalog_schemas.model import Source
from exchange import pipeline
from exchange.hub import Hub

cfg = json.loads(Path(CONFIG).read_text())
point, at_batch, marker = cfg["point"], cfg["batch"], Path(cfg["marker"])


def die(note=""):
    marker.write_text(point + note)
    os.kill(os.getpid(), signal.SIGKILL)


calls = {}


def nth(name):
    calls[name] = calls.get(name, 0) + 1
    return calls[name]


if point == "mid_read_sql":
    from connectors.sql import SqlSourceConnector
    page = SqlSourceConnector._page

    def _page(self, *a, **k):
        if nth("page") == at_batch:
            die()
        return page(self, *a, **k)

    SqlSourceConnector._page = _page
elif point == "mid_read_csv":
    from connectors.file_drop import FileDropConnector
    raw = FileDropConnector._raw_batches

    def _raw(self, path, layout):
        # the check pass reads each file once; the data pass is the second call
        if nth("raw") == 2:
            for i, b in enumerate(raw(self, path, layout)):
                if i == 0:
                    die()
                yield b
        yield from raw(self, path, layout)

    FileDropConnector._raw_batches = _raw
elif point == "after_validation":
    check = pipeline.Gate.check

    def _check(self, table):
        out = check(self, table)
        if nth("check") == at_batch:
            die()
        return out

    pipeline.Gate.check = _check
elif point == "mid_quarantine":
    record = pipeline.record_rejected

    def _record(*, session, **k):
        out = record(session=session, **k)
        if k["rejected"].num_rows:
            session.flush()
            die()  # rows inserted, transaction still open
        return out

    pipeline.record_rejected = _record
elif point == "after_quarantine":
    to_rows = pipeline.to_lake_rows

    def _to_rows(*a, **k):
        if nth("to_rows") == at_batch:
            die()
        return to_rows(*a, **k)

    pipeline.to_lake_rows = _to_rows
elif point == "mid_merge":
    from exchange.lake import LakeTable
    commit = LakeTable.commit_batch

    def _commit(self, rows, *, source, seq, state):
        if seq == at_batch:
            root = Path(self.uri)
            log = root / "_delta_log"
            before = {p for p in root.rglob("*.parquet")}
            version = max(int(p.stem) for p in log.glob("*.json"))

            def watch():
                while True:
                    if {p for p in root.rglob("*.parquet")} - before:
                        done = (log / f"{version + 1:020d}.json").exists()
                        die(" committed" if done else " uncommitted")
                    time.sleep(0.0005)

            threading.Thread(target=watch, daemon=True).start()
        return commit(self, rows, source=source, seq=seq, state=state)

    LakeTable.commit_batch = _commit
elif point == "after_commit":
    from exchange.lake import LakeTable
    commit = LakeTable.commit_batch

    def _commit(self, rows, *, source, seq, state):
        out = commit(self, rows, source=source, seq=seq, state=state)
        if seq == at_batch:
            die()
        return out

    LakeTable.commit_batch = _commit
elif point == "before_finish":
    open_connector = pipeline.open_connector

    def _open(source, **k):
        conn = open_connector(source, **k)
        conn.finish = lambda state: die()
        return conn

    pipeline.open_connector = _open
else:
    raise SystemExit(f"unknown point {point}")

catalog = shipped_catalog()
sources = {name: Source.model_validate(data) for name, data in cfg["sources"].items()}
hub = Hub(
    catalog=dataclasses.replace(catalog, sources={**catalog.sources, **sources}),
    engine=sa.create_engine(cfg["hub_db"]),
    lake_uri=cfg["lake"],
    hub_key=bytes.fromhex(cfg["hub_key"]),
    cipher=FieldCipher({"k1": bytes.fromhex(cfg["data_key"])}, "k1"),
    kek=bytes(32),
    issuer_did="did:web:onehub.test",
    resolve_connection=lambda conn_id: cfg["connections"][conn_id],
    now=lambda: dt.datetime.fromisoformat(cfg["now"]),
)
pipeline.ingest_source(hub, cfg["source"])
marker.write_text("finished without reaching " + point)
"""


SOURCES = ("dlr_title", "dlr_drop")
ROWS = 130  # ids 1..130; SQL batches of 40 -> 4 batches; 3 files of 45, 45, 40 rows
FILES = ((1, 46), (46, 91), (91, 131))
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def resident_id(i: int) -> str:
    """A valid GB 11643 number (born 1990-01-01, Tianhe district); every 17th one is broken."""
    body = f"44010619900101{i:03d}"
    check = "10X98765432"[sum(int(c) * w for c, w in zip(body, _WEIGHTS, strict=True)) % 11]
    if i % 17 == 0:  # a wrong check character: the gate quarantines the row
        check = "10X98765432"[("10X98765432".index(check) + 1) % 11]
    return body + check


def record(i: int) -> dict[str, Any]:
    """Row ``i`` of the department; 8 rows share each timestamp, so batch edges split groups."""
    return {
        "id": i,
        "bdcqzh": f"粤(2016)广州市不动产权第{i:07d}号",
        "qlrlx": "1",
        "qlrzjh": resident_id(i),
        "qlr": f"权利人{i}",
        "zl": f"广州市天河区测试路{i}号",
        "mj": f"{50 + i}.5",
        "yt": ["10", "20", "30", "40"][i % 4],
        "dbsj": (dt.date(2016, 1, 1) + dt.timedelta(days=i)).isoformat(),
        "last_modified": (dt.datetime(2016, 3, 23, 9) + dt.timedelta(minutes=i // 8)).isoformat(
            sep=" "
        ),
    }


def truth(source: str) -> tuple[dict[str, str], set[tuple[str, str]]]:
    """What the hub must hold: record key -> owner name, and the quarantined (source, ref)s."""
    lake = {
        f"real_estate_title:dlr:{record(i)['bdcqzh']}": record(i)["qlr"]
        for i in range(1, ROWS + 1)
        if i % 17
    }
    if source == "dlr_title":
        refs = {f"pk={i}" for i in range(1, ROWS + 1) if i % 17 == 0}
    else:
        refs = {
            f"export-{n}.csv:{i - lo + 2}"
            for n, (lo, hi) in enumerate(FILES, start=1)
            for i in range(lo, hi)
            if i % 17 == 0
        }
    return lake, {(source, r) for r in refs}


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The department systems, written once: a SQLite registry and a drop folder of GBK CSVs."""
    root = tmp_path_factory.mktemp("templates")
    engine = sa.create_engine(f"sqlite:///{root / 'dlr_registry.db'}")
    table = sa.Table(
        "property_register",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        *(sa.Column(c, sa.String(128)) for c in ("bdcqzh", "qlrlx", "qlrzjh", "qlr", "zl")),
        sa.Column("mj", sa.Numeric(12, 2)),
        sa.Column("yt", sa.String(4)),
        sa.Column("dbsj", sa.Date),
        sa.Column("last_modified", sa.DateTime),
    )
    table.create(engine)
    with engine.begin() as conn:
        rows = [record(i) for i in range(1, ROWS + 1)]
        for row in rows:
            row["dbsj"] = dt.date.fromisoformat(row["dbsj"])
            row["last_modified"] = dt.datetime.fromisoformat(row["last_modified"])
        conn.execute(table.insert(), rows)
    engine.dispose()
    drop = root / "dlr_drop"
    drop.mkdir()
    header = list(record(1))
    for n, (lo, hi) in enumerate(FILES, start=1):
        lines = [",".join(header)] + [
            ",".join(str(record(i)[h]) for h in header) for i in range(lo, hi)
        ]
        (drop / f"export-{n}.csv").write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))
    return root


def crash_catalog() -> Catalog:
    """The shipped catalog with dlr_title in batches of 40, and a file-drop twin of it."""
    catalog = shipped_catalog()
    sql = catalog.source("dlr_title")
    sql = sql.model_copy(
        update={
            "connector": sql.connector.model_copy(update={"batch_size": BATCH}),
            "quarantine_threshold": 1.0,
        }
    )
    files = sql.model_copy(
        update={
            "name": "dlr_drop",
            "connector": FileConnector(
                kind="file",
                connection="dlr_drop",
                encoding="gbk",
                primary_key="id",
                batch_size=20,
            ),
        }
    )
    return dataclasses.replace(
        catalog, sources={**catalog.sources, sql.name: sql, "dlr_drop": files}
    )


def make_hub(root: Path, templates: Path) -> Hub:
    """A hub on SQLite with its own copy of the department systems."""
    shutil.copytree(templates, root / "departments")
    past = dt.datetime.now().timestamp() - 3600  # the drops look complete (untouched for 1 h)
    for path in (root / "departments").rglob("*"):
        os.utime(path, (past, past))
    connections = {
        "dlr_registry": f"sqlite:///{root / 'departments' / 'dlr_registry.db'}",
        "dlr_drop": str(root / "departments" / "dlr_drop"),
    }
    engine = sa.create_engine(f"sqlite:///{root / 'hub.db'}")
    create_schema(engine)
    return Hub(
        catalog=crash_catalog(),
        engine=engine,
        lake_uri=str(root / "lake"),
        hub_key=bytes.fromhex(HUB_KEY),
        cipher=FieldCipher({"k1": bytes.fromhex(DATA_KEY)}, "k1"),
        kek=bytes(32),
        issuer_did="did:web:onehub.test",
        resolve_connection=lambda conn_id: connections[conn_id],
        now=lambda: NOW,
    )


def snapshot(hub: Hub) -> tuple[dict[str, tuple[Any, ...]], set[tuple[str, str]]]:
    """The lake (record key -> owner name, content hash, holder key, deleted) and quarantine."""
    table: pa.Table = LakeTable(hub.lake_uri, hub.catalog.license_type("real_estate_title")).read()
    keys = table.column("record_key").to_pylist()
    assert len(keys) == len(set(keys)), "a record is in the lake twice"
    lake = {
        r["record_key"]: (r["owner_name"], r["_row_hash"], r["holder_key"], r["_deleted"])
        for r in table.to_pylist()
    }
    with hub.sessions() as session:
        refs = list(session.execute(sa.select(QuarantineRow.source, QuarantineRow.row_ref)).all())
    quarantine = {(s, r) for s, r in refs}
    assert len(refs) == len(quarantine), "a row was quarantined twice"
    return lake, quarantine


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, templates: Path) -> dict[str, Any]:
    """Each source ingested without interruption; checked against the source's truth."""
    out: dict[str, Any] = {}
    for source in SOURCES:
        hub = make_hub(tmp_path_factory.mktemp(f"reference-{source}"), templates)
        report = ingest_source(hub, source)
        assert report.batches >= 4 and report.rows_in == ROWS
        lake, quarantine = snapshot(hub)
        assert ({k: v[0] for k, v in lake.items()}, quarantine) == truth(source)
        out[source] = (lake, quarantine)
    return out


@pytest.fixture(scope="module")
def zygote() -> Iterator[subprocess.Popen[str]]:
    """The process that forks one child per case (see ``_ZYGOTE``)."""
    process = subprocess.Popen(
        [sys.executable, "-c", f"CHILD = {_CHILD!r}\n" + _ZYGOTE],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    yield process
    assert process.stdin is not None
    process.stdin.close()
    process.wait(timeout=30)


CASES = [
    ("dlr_title", "mid_read_sql", 2),
    ("dlr_drop", "mid_read_csv", 1),
    ("dlr_title", "after_validation", 2),
    ("dlr_title", "mid_quarantine", 1),
    ("dlr_title", "after_quarantine", 3),
    ("dlr_title", "mid_merge", 2),
    ("dlr_drop", "mid_merge", 3),
    ("dlr_title", "after_commit", 2),
    ("dlr_drop", "after_commit", 4),
    ("dlr_drop", "before_finish", 0),
]


@pytest.mark.parametrize(("source", "point", "batch"), CASES, ids=[f"{s}-{p}" for s, p, _ in CASES])
def test_sigkill_then_rerun_leaves_the_lake_equal_to_the_source(
    tmp_path: Path,
    templates: Path,
    reference: dict[str, Any],
    zygote: subprocess.Popen[str],
    source: str,
    point: str,
    batch: int,
) -> None:
    hub = make_hub(tmp_path, templates)
    marker = tmp_path / "marker"
    config = tmp_path / "child.json"
    config.write_text(
        json.dumps(
            {
                "point": point,
                "batch": batch,
                "marker": str(marker),
                "source": source,
                "sources": {
                    name: hub.catalog.source(name).model_dump(
                        mode="json", by_alias=True, exclude_none=True
                    )
                    for name in SOURCES
                },
                "hub_db": str(hub.engine.url),
                "lake": hub.lake_uri,
                "hub_key": HUB_KEY,
                "data_key": DATA_KEY,
                "connections": {c: hub.resolve_connection(c) for c in ("dlr_registry", "dlr_drop")},
                "now": NOW.isoformat(),
            }
        )
    )

    assert zygote.stdin is not None and zygote.stdout is not None
    zygote.stdin.write(f"{config}\n")
    zygote.stdin.flush()
    returncode = int(zygote.stdout.readline())

    assert returncode == -signal.SIGKILL, marker.read_text() if marker.exists() else returncode
    assert marker.read_text().startswith(point)
    if point == "mid_merge":
        assert marker.read_text() == "mid_merge uncommitted"

    first = ingest_source(hub, source)
    assert first.rows_in == first.rows_loaded + first.rows_quarantined
    lake, quarantine = snapshot(hub)
    assert ({k: v[0] for k, v in lake.items()}, quarantine) == truth(source)
    assert (lake, quarantine) == reference[source]
    assert ingest_source(hub, source).rows_in == 0
    assert snapshot(hub) == reference[source]
    if source == "dlr_drop":
        drop = Path(hub.resolve_connection("dlr_drop"))
        assert not [p for p in drop.iterdir() if p.is_file()], "every read file is archived"
