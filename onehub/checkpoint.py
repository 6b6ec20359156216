"""WAL checkpoints of the embedded (SQLite) hub database, run in a background thread.

At a checkpoint SQLite copies the pages that commits appended to the write-ahead log back into
the database file. By default the connection whose commit takes the log past 1,000 pages does
it, inside that commit: a pipeline issuing a 20,000-license changeset waited 160-250 ms more
for its commit, about as long as storing the rows took (bench/issuance.py). The hub's engines
leave it to a :class:`Checkpointer` instead, as PostgreSQL leaves it to its checkpointer
process: after a commit that wrote, a thread of the engine's own runs a PASSIVE checkpoint
(which never blocks readers or writers), at most one per :data:`PAUSE`. The connections still
checkpoint for themselves once the log reaches :data:`FALLBACK_PAGES`, so the log stays bounded
if the thread cannot keep up or is gone (a forked process, an exiting one).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote
from weakref import WeakKeyDictionary

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
        path: The database file (as the engine opens it).
        pause: Seconds between checkpoints, at least.
        idle: Seconds without a commit after which the thread ends.
    """

    def __init__(self, path: str, *, pause: float = PAUSE, idle: float = IDLE) -> None:
        self.path = path
        self.stats = CheckpointStats()
        self._pause = pause
        self._idle = idle
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._state = threading.Condition()
        self._due = False  # a commit wrote since the last checkpoint started
        self._running = False
        self._closing = False
        self._thread: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        """Whether the thread is running (it ends when idle and when closed)."""
        with self._state:
            return self._thread is not None

    def committed(self) -> None:
        """Note that a commit wrote to the log: a checkpoint follows within the pause."""
        if self._pid != os.getpid():
            self._reset()  # a forked child: the parent's thread and lock state stay behind
        with self._state:
            self._due = True
            if self._thread is None and not self._closing:
                self._thread = threading.Thread(
                    target=self._run, name="onehub-wal-checkpoint", daemon=True
                )
                self._thread.start()
            self._state.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no checkpoint is due or running; False if ``timeout`` seconds ran out."""
        with self._state:
            return self._state.wait_for(
                lambda: self._thread is None or not (self._due or self._running), timeout
            )

    def close(self) -> None:
        """Run a checkpoint still due, then end the thread (the engine is being disposed)."""
        with self._state:
            self._closing = True
            thread = self._thread
            self._state.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        with self._state:
            self._closing = False  # an engine may be used again after dispose()

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
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
        finally:
            if connection is not None:
                connection.close()

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
                self._thread = None  # idle or closing: a later commit starts another
                self._state.notify_all()
                return False
            self._due = False
            self._running = True
            return True

    def _connect(self) -> sqlite3.Connection | None:
        try:
            # mode=rw: a database file that is gone is not created again, empty.
            return sqlite3.connect(
                f"file:{quote(self.path)}?mode=rw",
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
            if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY:
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
                checkpointer.committed()

    return _Connection


_ENGINES: WeakKeyDictionary[sa.Engine, Checkpointer] = WeakKeyDictionary()


def attach(engine: sa.Engine, checkpointer: Checkpointer) -> None:
    """Close ``checkpointer`` when ``engine`` is disposed; :func:`checkpointer_of` finds it."""
    _ENGINES[engine] = checkpointer
    sa.event.listen(engine, "engine_disposed", lambda _engine: checkpointer.close())


def checkpointer_of(engine: sa.Engine) -> Checkpointer | None:
    """The checkpointer of an engine :func:`onehub.settings.make_engine` made, if any."""
    return _ENGINES.get(engine)
