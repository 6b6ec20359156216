"""WAL checkpoints of the embedded (SQLite) hub database, run in a background thread.

At a checkpoint SQLite copies the pages that commits appended to the write-ahead log back into
the database file. By default the connection whose commit takes the log past 1,000 pages does
it, inside that commit: a pipeline issuing a 20,000-license changeset waited 160-250 ms more
for its commit, about as long as storing the rows took (bench/issuance.py). The hub's engines
leave it to a :class:`Checkpointer` instead, as PostgreSQL leaves it to its checkpointer
process: after a commit that wrote, a thread of the engine's own runs a PASSIVE checkpoint
(which never blocks readers or writers), at most one per :data:`PAUSE`, and again after each
pause while a reader still needs older pages. The connections still checkpoint for themselves
once the log reaches :data:`FALLBACK_PAGES`, so the log stays bounded if the thread cannot keep
up or is gone.

What wakes the thread is a commit of a transaction the connection had open
(``in_transaction``): an INSERT, UPDATE, DELETE or REPLACE through SQLAlchemy or sqlite3.
Statements sqlite3 runs outside a transaction (DDL, a CTE in front of DML, AUTOCOMMIT
connections) are checkpointed with the next commit that wakes it, or by the fallback. Disposing
of the engine, forking, and the interpreter's exit each end the thread after any checkpoint
still due.
"""

from __future__ import annotations

import atexit
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from weakref import WeakKeyDictionary, WeakSet

import sqlalchemy as sa

logger = logging.getLogger(__name__)

# The log size, in pages, at which a committing connection checkpoints for itself (SQLite's
# default is 1,000): 256 MiB at the hub's 16 KiB pages, a few changesets' worth of licenses.
FALLBACK_PAGES: Final = 16384
# Seconds from the end of one checkpoint to the start of the next, at least: a hub that commits
# small rows all the time (the API's audit log) checkpoints once a second, not once per commit.
PAUSE: Final = 1.0
# Seconds without a commit after which the thread closes its connection and ends (the next
# commit starts another): an idle engine, or one a test forgot, holds no thread.
IDLE: Final = 30.0


@dataclass
class CheckpointStats:
    """What the checkpoints of one :class:`Checkpointer` did so far."""

    checkpoints: int = 0
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0


class Checkpointer:
    """Checkpoints one SQLite database file after commits, from a thread of its own.

    Args:
        path: The database file (made absolute here, so a later change of directory does not
            point the thread at another file).
        pause: Seconds between checkpoints, at least.
        idle: Seconds without a commit after which the thread ends.
    """

    def __init__(self, path: str, *, pause: float = PAUSE, idle: float = IDLE) -> None:
        self.path = os.path.abspath(path)
        self.stats = CheckpointStats()
        self._pause = pause
        self._idle = idle
        self._reset()
        _LIVE.add(self)

    def _reset(self) -> None:
        # Also in a forked child, where the parent's thread did not come along and its lock may
        # have been held at the fork.
        self._state = threading.Condition()
        self._due = False  # a commit wrote since the last checkpoint started
        self._running = False
        self._closing = False
        self._thread: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        """Whether a thread is on duty (it ends when idle and when closed)."""
        with self._state:
            return self._thread is not None

    def committed(self) -> None:
        """Note that a commit wrote to the log: a checkpoint follows within the pause."""
        with self._state:
            self._due = True
            self._start()
            self._state.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no checkpoint is due or running; False if ``timeout`` seconds ran out."""
        with self._state:
            return self._state.wait_for(
                lambda: self._thread is None or not (self._due or self._running), timeout
            )

    def close(self, *, final: bool = False) -> None:
        """Run a checkpoint still due, then end the thread (the engine is being disposed).

        The engine may be used again, and its next commit starts another thread; ``final``
        (at the interpreter's exit) starts none.
        """
        with self._state:
            self._closing = True
            thread = self._thread
            self._state.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        if final:
            return
        with self._state:
            self._closing = False
            self._start()  # for a commit that came while the thread was ending

    def _start(self) -> None:
        """Start a thread if a checkpoint is due and none is on duty (the lock is held)."""
        if not self._due or self._thread is not None or self._closing:
            return
        thread = threading.Thread(target=self._run, name="onehub-wal-checkpoint", daemon=True)
        try:
            thread.start()
        except RuntimeError as exc:  # no threads left: the next commit tries again
            logger.warning("cannot start the WAL checkpoint thread of %s: %s", self.path, exc)
            return
        self._thread = thread

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        failed = False
        try:
            while self._next():
                if connection is None:
                    connection = self._connect()
                complete = connection is None or self._checkpoint(connection)
                with self._state:
                    self._running = False
                    if not complete and not self._closing:
                        # A reader still needs older pages, or another connection was
                        # checkpointing: the rest after the pause.
                        self._due = True
                    self._state.notify_all()
                    self._state.wait_for(lambda: self._closing, self._pause)
        except Exception:
            # Not ours to raise anywhere; the next commit starts another thread.
            failed = True
            logger.exception("the WAL checkpoint thread of %s failed", self.path)
        finally:
            if connection is not None:
                connection.close()
            with self._state:
                self._running = False
                if self._thread is threading.current_thread():
                    self._thread = None
                    if not failed:
                        self._start()  # a commit that came while this thread was ending
                self._state.notify_all()

    def _next(self) -> bool:
        """Wait for a checkpoint to be due and mark it running; False when the thread ends."""
        with self._state:
            deadline = time.monotonic() + self._idle
            while not self._due and not self._closing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._state.wait(remaining)
            if not self._due:
                return False  # idle, or closing with nothing due
            self._due = False
            self._running = True
            return True

    def _connect(self) -> sqlite3.Connection | None:
        try:
            # mode=rw: a database file that is gone is not created again, empty.
            return sqlite3.connect(
                f"{Path(self.path).as_uri()}?mode=rw",
                uri=True,
                timeout=0,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            logger.warning("cannot open %s to checkpoint its WAL: %s", self.path, exc)
            return None

    def _checkpoint(self, connection: sqlite3.Connection) -> bool:
        """One PASSIVE checkpoint; True if it copied every page of the log."""
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            busy, log, done = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:
            # sqlite_errorcode is the extended code (SQLITE_BUSY_RECOVERY is 261).
            if (getattr(exc, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_BUSY:
                return False  # another connection is checkpointing (or closing): again later
            # The next commit tries again; the connections' own checkpoints bound the log.
            logger.warning("WAL checkpoint of %s failed: %s", self.path, exc)
            return True
        self.stats.checkpoints += 1
        self.stats.wall_seconds += time.perf_counter() - wall
        self.stats.cpu_seconds += time.thread_time() - cpu
        return not busy and done >= log


def connection_class(checkpointer: Checkpointer) -> type[sqlite3.Connection]:
    """A sqlite3 connection class whose commits of written transactions wake ``checkpointer``.

    Given to ``sqlite3.connect`` as its ``factory``; the connections checkpoint for themselves
    only at :data:`FALLBACK_PAGES`.
    """

    class _Connection(sqlite3.Connection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.execute(f"PRAGMA wal_autocheckpoint={FALLBACK_PAGES}")

        def commit(self) -> None:
            wrote = self.in_transaction
            super().commit()
            if wrote:
                try:
                    checkpointer.committed()
                except Exception:
                    # The commit is durable: a caller told otherwise might write it twice.
                    # The connections' own checkpoints bound the log meanwhile.
                    logger.exception("cannot schedule a WAL checkpoint of %s", checkpointer.path)

    return _Connection


_ENGINES: WeakKeyDictionary[sa.Engine, Checkpointer] = WeakKeyDictionary()
_LIVE: WeakSet[Checkpointer] = WeakSet()


def attach(engine: sa.Engine, checkpointer: Checkpointer) -> None:
    """Close ``checkpointer`` when ``engine`` is disposed; :func:`checkpointer_of` finds it."""
    _ENGINES[engine] = checkpointer
    sa.event.listen(engine, "engine_disposed", lambda _engine: checkpointer.close())


def checkpointer_of(engine: sa.Engine) -> Checkpointer | None:
    """The checkpointer of an engine :func:`onehub.settings.make_engine` made, if any."""
    return _ENGINES.get(engine)


def _after_fork_in_child() -> None:
    for checkpointer in list(_LIVE):
        checkpointer._reset()


def _close_all() -> None:
    # At exit, the checkpoints still due: a CLI command or a pipeline task leaves its commits
    # in the database file, not only in the WAL.
    for checkpointer in list(_LIVE):
        checkpointer.close(final=True)


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_close_all)
