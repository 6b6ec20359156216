"""Where SQLite's share of issuance goes: the same license rows stored into variants of the schema.

``bench/issuance.py`` shows SQLite's own work (B-tree inserts, WAL writes, checkpoints) to cost
about as much as a signature per license, in the issuing process. This bench takes real issued
rows (``issue()`` into a hub database, as bench/issuance.py does) and stores them again,
``--batch`` licenses and their holder rows per ``executemany`` and commit, into fresh databases
that differ in one thing each:

* **as the hub**: the hub's schema and settings (``make_engine``: WAL, 16 KiB pages, 64 MiB page
  cache, foreign keys), the same work as issuance's SQLite writes.
* **checkpoint at the end**: no automatic checkpoints during the run, one ``wal_checkpoint`` at
  its end, counted: whether checkpointing once instead of every 1,000 pages saves work.
* **holders WITHOUT ROWID**: the holder rows stored in their primary key's B-tree only.
* **foreign keys not enforced**: no parent lookup per holder row.
* **without secondary indexes**: the licenses table keeps its primary key only.
* **without holder rows**: licenses only.
* **bare licenses table**: licenses only, primary key only.
* **bare, credential left out**: as above with an empty credential column: what a license row
  costs when the 2.4 kB token is not stored at all.

Each figure is user and system CPU of this process (``getrusage``) per license, median of the
repeats; the variants run in turn within each repeat, so all see the same background load.

    .venv/bin/python bench/sqlite_storage.py [--licenses 20000] [--repeats 5] [--batch 2000]

Results go to bench/results/sqlite_storage.md (or ``--out``).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from issuance import (
    LICENSE_COLUMNS,
    Row,
    _Clock,
    _cpu_model,
    _fresh_engine,
    _issue_all,
    batches,
    insert_batches,
    records,
    stored_rows,
)

from catalog_schemas.cipher import FieldCipher
from license_store.model import License, LicenseHolder

HERE = Path(__file__).resolve().parent
TOKEN = LICENSE_COLUMNS.index("credential_enc")


@dataclass(frozen=True)
class Variant:
    """One way of storing the rows; see the module docstring."""

    label: str
    indexes: bool = True
    holders: bool = True
    credential: bool = True
    deferred_checkpoint: bool = False
    holders_without_rowid: bool = False
    foreign_keys: bool = True


VARIANTS = (
    Variant("as the hub (WAL, 16 KiB pages, indexes, foreign keys)"),
    Variant("checkpoint once at the end (counted)", deferred_checkpoint=True),
    Variant("holder rows in a WITHOUT ROWID table", holders_without_rowid=True),
    Variant("foreign keys not enforced", foreign_keys=False),
    Variant("without the four secondary indexes of licenses", indexes=False),
    Variant("without holder rows (licenses only)", holders=False),
    Variant("bare licenses table (primary key only, no holders)", indexes=False, holders=False),
    Variant(
        "bare, credential left out (empty token)", indexes=False, holders=False, credential=False
    ),
)


def issued_rows(count: int, folder: Path) -> tuple[list[Row], dict[str, list[Row]]]:
    """Rows of ``count`` licenses issued into a hub database, and their holder rows."""
    cipher = FieldCipher({"k1": os.urandom(32)}, "k1")
    engine = _fresh_engine(None, folder)
    _issue_all(engine, records(count), count, cipher, os.urandom(32), [], [], _Clock())
    try:
        return stored_rows(engine)
    finally:
        engine.dispose()


def _schema(variant: Variant) -> sa.MetaData:
    """The license tables of the hub, less what the variant leaves out."""
    metadata = sa.MetaData()
    licenses = License.__table__.to_metadata(metadata)  # type: ignore[attr-defined]
    if not variant.indexes:
        for constraint in [c for c in licenses.constraints if isinstance(c, sa.UniqueConstraint)]:
            licenses.constraints.remove(constraint)
        licenses.indexes.clear()
        for column in licenses.columns:
            column.unique = False
    if variant.holders:
        holders = LicenseHolder.__table__.to_metadata(metadata)  # type: ignore[attr-defined]
        if variant.holders_without_rowid:
            holders.dialect_options["sqlite"]["with_rowid"] = False
    return metadata


def store(
    variant: Variant,
    licenses: list[Row],
    holders: dict[str, list[Row]],
    size: int,
    folder: Path,
) -> tuple[float, float]:
    """User and system CPU seconds to store the rows as ``variant`` says."""
    engine = _fresh_engine(None, folder, _schema(variant))
    rows = licenses if variant.credential else [(*r[:TOKEN], "", *r[TOKEN + 1 :]) for r in licenses]
    parts = batches(rows, holders if variant.holders else {}, size)
    raw = engine.raw_connection()
    driver: sqlite3.Connection = raw.driver_connection  # type: ignore[assignment]
    if variant.deferred_checkpoint:
        driver.execute("PRAGMA wal_autocheckpoint=0")
    if not variant.foreign_keys:
        driver.execute("PRAGMA foreign_keys=OFF")
    before = resource.getrusage(resource.RUSAGE_SELF)
    try:
        insert_batches(driver, parts)
        if variant.deferred_checkpoint:
            driver.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        raw.close()
        # Waits for the hub's checkpoint thread (this process's CPU too) to finish its last.
        engine.dispose()
    after = resource.getrusage(resource.RUSAGE_SELF)
    return after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime


def run(count: int, repeats: int, size: int, progress: Callable[[str], None]) -> dict[str, Any]:
    """Every variant ``repeats`` times, in turn; medians of user and system µs per license."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        licenses, holders = issued_rows(count, folder)
        token_bytes = statistics.mean(len(row[TOKEN]) for row in licenses)
        times: dict[str, list[tuple[float, float]]] = {v.label: [] for v in VARIANTS}
        signing: list[float] = []
        key = Ed25519PrivateKey.generate()
        messages = [os.urandom(64) for _ in range(count)]
        (folder / "store").mkdir()
        for repeat in range(repeats):
            # A signature's CPU on this machine, to set the figures against.
            cpu = time.process_time()
            for message in messages:
                key.sign(message)
            signing.append(time.process_time() - cpu)
            for variant in VARIANTS:
                times[variant.label].append(
                    store(variant, licenses, holders, size, folder / "store")
                )
            progress(f"repeat {repeat + 1} of {repeats} done")
    per = 1e6 / count
    return {
        "count": count,
        "repeats": repeats,
        "size": size,
        "holders": sum(map(len, holders.values())) / count,
        "token_bytes": token_bytes,
        "sign_us": statistics.median(signing) * per,
        "rows": [
            (
                label,
                statistics.median(u for u, _ in runs) * per,
                statistics.median(s for _, s in runs) * per,
                statistics.median(u + s for u, s in runs) * per,
                [round((u + s) * per, 1) for u, s in runs],
            )
            for label, runs in times.items()
        ],
    }


def write(result: dict[str, Any], out: Path, command: str) -> None:
    lines = [
        "# Where SQLite's share of issuance goes",
        "",
        f"`{command}`",
        "",
        f"{result['count']:,} issued marriage-certificate licenses ({result['holders']:.0f} holder"
        f" rows each, stored tokens of {result['token_bytes'] / 1000:.1f} kB), stored again"
        f" {result['size']:,} per executemany and commit into a fresh SQLite database per"
        f" variant. CPU of this process per license, median of {result['repeats']} repeats.",
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version},"
        f" {os.cpu_count()} CPUs ({_cpu_model()}, {platform.machine()}).",
        "",
        "| variant | user µs | system µs | total µs | total per repeat |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for label, user, system, total, each in result["rows"]:
        lines.append(
            f"| {label} | {user:.1f} | {system:.1f} | {total:.1f} | {' / '.join(map(str, each))} |"
        )
    lines += [
        "",
        "System time is the kernel copying pages: into the WAL at each commit and from the WAL"
        " into the database at each checkpoint. Checkpointing once at the end does not save it:"
        f" every page is still copied once. An Ed25519 signature (`cryptography`, measured in"
        f" each repeat) costs {result['sign_us']:.0f} µs of CPU on this machine, so even a"
        " licenses table with no secondary index, no holder rows and no token costs a"
        " fair part of one in the issuing process.",
        "",
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--licenses", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "sqlite_storage.md")
    args = parser.parse_args()
    command = (
        f".venv/bin/python bench/sqlite_storage.py --licenses {args.licenses}"
        f" --repeats {args.repeats} --batch {args.batch}"
    )
    result = run(args.licenses, args.repeats, args.batch, print)
    for label, user, system, total, each in result["rows"]:
        print(f"{label:60s} user {user:5.1f} sys {system:5.1f} total {total:5.1f} µs {each}")
    write(result, args.out, command)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
