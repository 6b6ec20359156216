"""WAL checkpoints of the embedded hub database, in a background thread (onehub.checkpoint)."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from onehub.checkpoint import (
    FALLBACK_PAGES,
    Checkpointer,
    attach,
    checkpointer_of,
    connection_class,
)
from onehub.settings import SQLITE_PAGE_SIZE, make_engine

# 16 MiB of rows: about a thousand 16 KiB pages, fewer than FALLBACK_PAGES, so the committing
# connection never checkpoints them itself; only the checkpointer moves them into the file.
ROWS = 256
ROW_BYTES = 64 * 1024


def _engine(path: Path, checkpointer: Checkpointer) -> sa.Engine:
    engine = sa.create_engine(
        f"sqlite:///{path}", connect_args={"factory": connection_class(checkpointer)}
    )
    attach(engine, checkpointer)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
        connection.exec_driver_sql("PRAGMA journal_mode=WAL")
        connection.exec_driver_sql("CREATE TABLE blobs (n INTEGER PRIMARY KEY, data BLOB)")
    return engine


def _write(engine: sa.Engine, first: int = 0) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO blobs VALUES (?, ?)",
            [(first + n, os.urandom(ROW_BYTES)) for n in range(ROWS)],
        )


def _in_file(path: Path) -> int:
    """Bytes of the database file itself (what checkpoints have copied out of the WAL)."""
    return path.stat().st_size


@pytest.fixture
def checkpointer(tmp_path: Path) -> Iterator[Checkpointer]:
    checkpointer = Checkpointer(str(tmp_path / "hub.db"), pause=0.05, idle=0.2)
    yield checkpointer
    checkpointer.close()


def test_a_commit_is_checkpointed_by_the_thread_not_by_the_committing_connection(
    tmp_path: Path,
) -> None:
    path = tmp_path / "hub.db"
    engine = make_engine(f"sqlite:///{path}")
    checkpointer = checkpointer_of(engine)
    assert checkpointer is not None
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == FALLBACK_PAGES
        connection.exec_driver_sql("CREATE TABLE blobs (n INTEGER PRIMARY KEY, data BLOB)")
    before = checkpointer.stats.checkpoints
    _write(engine)
    assert checkpointer.wait(timeout=10)
    assert checkpointer.stats.checkpoints > before
    # Every page of the commit is in the file now, and no commit of this engine put it there.
    assert _in_file(path) >= ROWS * ROW_BYTES
    engine.dispose()
    assert not checkpointer.alive


def test_without_the_thread_the_pages_stay_in_the_wal(tmp_path: Path) -> None:
    # The control for the test above: the same commit on a connection with the hub's fallback
    # threshold and no checkpointer leaves the database file as it was.
    path = tmp_path / "hub.db"
    engine = sa.create_engine(f"sqlite:///{path}")

    @sa.event.listens_for(engine, "connect")
    def _fallback(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        dbapi_conn.execute(f"PRAGMA wal_autocheckpoint={FALLBACK_PAGES}")

    with engine.begin() as connection:
        connection.exec_driver_sql("PRAGMA journal_mode=WAL")
        connection.exec_driver_sql("CREATE TABLE blobs (n INTEGER PRIMARY KEY, data BLOB)")
    _write(engine)
    assert _in_file(path) < ROW_BYTES
    engine.dispose()


def test_reads_do_not_wake_it(tmp_path: Path, checkpointer: Checkpointer) -> None:
    engine = _engine(tmp_path / "hub.db", checkpointer)
    assert checkpointer.wait(timeout=10)
    before = checkpointer.stats.checkpoints
    for _ in range(3):
        with engine.begin() as connection:
            connection.exec_driver_sql("SELECT count(*) FROM blobs").scalar()
    assert checkpointer.wait(timeout=10)
    assert checkpointer.stats.checkpoints == before
    engine.dispose()


def test_an_idle_thread_ends_and_the_next_commit_starts_another(
    tmp_path: Path, checkpointer: Checkpointer
) -> None:
    path = tmp_path / "hub.db"
    engine = _engine(path, checkpointer)
    _write(engine)
    assert checkpointer.wait(timeout=10)
    checkpointer.close()  # ends the thread; the engine can still be used
    assert not checkpointer.alive
    _write(engine, first=ROWS)
    assert checkpointer.alive
    assert checkpointer.wait(timeout=10)
    assert _in_file(path) >= 2 * ROWS * ROW_BYTES
    # With no commit for longer than `idle`, the thread closes its connection and ends.
    deadline = time.monotonic() + 10
    while checkpointer.alive and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not checkpointer.alive
    engine.dispose()


def test_a_reader_on_an_old_snapshot_delays_the_checkpoint_until_it_ends(
    tmp_path: Path, checkpointer: Checkpointer
) -> None:
    path = tmp_path / "hub.db"
    engine = _engine(path, checkpointer)
    assert checkpointer.wait(timeout=10)
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM blobs").fetchone()  # holds the snapshot before the write
    _write(engine)
    # The checkpointer retries after each pause and cannot finish while the reader needs the
    # file as it was.
    assert not checkpointer.wait(timeout=0.5)
    assert _in_file(path) < ROWS * ROW_BYTES
    reader.execute("COMMIT")
    reader.close()
    assert checkpointer.wait(timeout=10)
    assert _in_file(path) >= ROWS * ROW_BYTES
    engine.dispose()


def test_dispose_runs_the_checkpoint_still_due(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    # A long pause: the commit below is due while the thread waits after its first checkpoint.
    checkpointer = Checkpointer(str(path), pause=30, idle=60)
    engine = _engine(path, checkpointer)
    _write(engine)
    assert checkpointer.wait(timeout=10)
    assert checkpointer.stats.checkpoints == 1
    _write(engine, first=ROWS)
    engine.dispose()
    assert not checkpointer.alive
    assert checkpointer.stats.checkpoints == 2
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT count(*) FROM blobs").fetchone() == (2 * ROWS,)
    assert _in_file(path) >= 2 * ROWS * ROW_BYTES


def test_an_in_memory_database_gets_no_checkpointer() -> None:
    assert checkpointer_of(make_engine("sqlite://")) is None
    assert checkpointer_of(make_engine("sqlite:///:memory:")) is None


def test_a_commit_racing_close_still_gets_its_checkpoint(tmp_path: Path) -> None:
    # engine.dispose() closes the checkpointer while another thread may still commit: whatever
    # the interleaving, a commit must end with a thread on duty for it, or checkpointed.
    path = tmp_path / "hub.db"
    checkpointer = Checkpointer(str(path), pause=0.0, idle=5)
    engine = _engine(path, checkpointer)
    stranded = 0
    for n in range(200):
        writer = threading.Thread(target=_write_row, args=(engine, n))
        writer.start()
        checkpointer.close()
        writer.join()
        with checkpointer._state:
            stranded += checkpointer._due and checkpointer._thread is None
    assert stranded == 0
    engine.dispose()


def _write_row(engine: sa.Engine, n: int) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO blobs VALUES (?, ?)", (n, b"x"))


class _FailingOnce(Checkpointer):
    """A checkpointer whose first checkpoint raises something no handler expects."""

    failures = 0

    def _checkpoint(self, connection: sqlite3.Connection) -> bool:
        if not self.failures:
            self.failures += 1
            raise ZeroDivisionError("a bug")
        return super()._checkpoint(connection)


def test_a_thread_that_fails_ends_and_the_next_commit_starts_another(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "hub.db"
    checkpointer = _FailingOnce(str(path), pause=0.05, idle=5)
    engine = _engine(path, checkpointer)
    _write(engine)
    assert checkpointer.wait(timeout=10)
    assert not checkpointer.alive
    assert "the WAL checkpoint thread" in caplog.text and "ZeroDivisionError" in caplog.text
    _write(engine, first=ROWS)
    assert checkpointer.wait(timeout=10)
    assert checkpointer.stats.checkpoints == 1
    assert _in_file(path) >= 2 * ROWS * ROW_BYTES
    engine.dispose()


def test_a_commit_succeeds_when_no_thread_can_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "hub.db"
    checkpointer = Checkpointer(str(path), pause=0.05, idle=5)
    engine = _engine(path, checkpointer)

    def refuse(_thread: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    with monkeypatch.context() as patched:
        patched.setattr(threading.Thread, "start", refuse)
        _write(engine)  # raises nothing: the rows are committed
    assert not checkpointer.alive
    assert "cannot start the WAL checkpoint thread" in caplog.text
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM blobs").scalar() == ROWS
    _write(engine, first=ROWS)
    assert checkpointer.wait(timeout=10)
    assert _in_file(path) >= 2 * ROWS * ROW_BYTES
    engine.dispose()


def test_checkpoints_come_at_most_once_a_pause(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    checkpointer = Checkpointer(str(path), pause=5, idle=10)
    engine = _engine(path, checkpointer)
    for n in range(20):
        _write_row(engine, n)
    # The first commit's checkpoint runs at once; the other 19 wait for the end of the pause.
    time.sleep(0.5)
    assert checkpointer.stats.checkpoints == 1
    engine.dispose()  # runs the one still due
    assert checkpointer.stats.checkpoints == 2


def test_a_relative_database_path_is_checkpointed_after_a_change_of_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "hub").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "hub")
    engine = make_engine("sqlite:///hub.db")
    checkpointer = checkpointer_of(engine)
    assert checkpointer is not None
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE blobs (n INTEGER PRIMARY KEY, data BLOB)")
    monkeypatch.chdir(tmp_path / "elsewhere")
    _write(engine)
    assert checkpointer.wait(timeout=10)
    assert _in_file(tmp_path / "hub" / "hub.db") >= ROWS * ROW_BYTES
    assert not (tmp_path / "elsewhere" / "hub.db").exists()
    engine.dispose()


def test_a_missing_database_file_is_not_created_by_the_checkpointer(tmp_path: Path) -> None:
    checkpointer = Checkpointer(str(tmp_path / "gone.db"), pause=0.05, idle=5)
    checkpointer.committed()
    assert checkpointer.wait(timeout=10)
    checkpointer.close()
    assert not (tmp_path / "gone.db").exists()


def test_a_uri_database_keeps_sqlites_own_checkpoints(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///file:{tmp_path / 'hub.db'}?mode=rwc&uri=true")
    assert checkpointer_of(engine) is None
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    engine.dispose()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_its_own_thread(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    checkpointer = Checkpointer(str(path), pause=0.05, idle=5)
    engine = _engine(path, checkpointer)
    _write(engine)
    assert checkpointer.wait(timeout=10) and checkpointer.alive
    pid = os.fork()
    if pid == 0:  # the child: the parent's thread did not come along
        code = 1
        try:
            engine.dispose(close=False)  # as SQLAlchemy asks of a forked child
            ok = not checkpointer.alive
            _write(engine, first=ROWS)
            ok = ok and checkpointer.alive and checkpointer.wait(timeout=10)
            code = 0 if ok and _in_file(path) >= 2 * ROWS * ROW_BYTES else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    engine.dispose()
