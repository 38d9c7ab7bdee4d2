"""``SqliteStore``: the ``Store`` interface on one SQLite file (WAL, ``synchronous=FULL``).

Each concern lives in its own module; this class puts them together: the connections
(``connection.py``), the write path (``writer.py``, under the shared ``GroupCommitLoop``), the
outbox (``outbox.py``), the reads (``queries.py``) and reconcile's state (``reconcile.py``),
plus the health checks.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path

from tcwebhook.store.base import Store
from tcwebhook.store.commits import CommitHealth, GroupCommitLoop
from tcwebhook.store.records import AppendResult, NewEvent
from tcwebhook.store.sqlite.outbox import SqliteOutbox
from tcwebhook.store.sqlite.queries import SqliteQueries
from tcwebhook.store.sqlite.reconcile import SqliteReconcileState
from tcwebhook.store.sqlite.requests import SqliteRequests
from tcwebhook.store.sqlite.writer import SqliteCommitter, insert_events

PROBE_BYTES = 64 * 1024


class SqliteStore(SqliteQueries, SqliteOutbox, SqliteReconcileState, SqliteRequests, Store):
    """Durable event store in one SQLite file."""

    def __init__(
        self,
        path: Path,
        busy_timeout: float = 2.0,
        *,
        read_only: bool = False,
        create: bool = True,
    ) -> None:
        """Open (create, migrate) the database at ``path``; the options as ``SqliteDatabase``."""
        super().__init__(path, busy_timeout, read_only=read_only, create=create)
        self._health = CommitHealth()
        self._committer = SqliteCommitter(self._connect)
        self._writer = GroupCommitLoop(self._committer, self._health)
        # append's two attributes, so a request pays no lookup through the writer.
        self._queue = self._writer.queue
        self._writing = False  # the writer thread runs

    @property
    def commit_observer(self) -> Callable[[int, float], None] | None:
        """Called in the writer thread after each commit with (events, seconds): metrics."""
        return self._writer.commit_observer

    @commit_observer.setter
    def commit_observer(self, observer: Callable[[int, float], None] | None) -> None:
        self._writer.commit_observer = observer

    def coordinate_writers(self) -> None:
        """Several processes write this store at once (``serve --workers``): take turns."""
        self._committer.take_turns(self.path.with_name(self.path.name + ".writers.lock"))

    # ---------------------------------------------------------------------------------------
    # Writing

    def append(self, event: NewEvent) -> asyncio.Future[AppendResult]:
        """Store one event (and its tasks); the future is done once it is committed to disk.

        A plain function returning the future, not a coroutine: one frame less per request.
        """
        if not self._writing:
            self._start_writer()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[AppendResult] = loop.create_future()
        self._queue.put((event, future, loop))
        return future

    def _start_writer(self) -> None:
        self._writer.start()
        self._writing = True

    def append_sync(self, event: NewEvent) -> AppendResult:
        """Blocking ``append`` in its own transaction (tools and tests; no group commit)."""
        with self.writing() as connection:
            return insert_events(connection, [event])[0]

    def close(self) -> None:
        """Let the writer finish what is queued, then stop it."""
        self._writing = False
        self._writer.close()
        self._committer.stop_taking_turns()

    # ---------------------------------------------------------------------------------------
    # Health

    def problem(self) -> str | None:
        """Why the store cannot take events now, or None (for /healthz; blocking).

        A commit that failed recently counts until a later one succeeds (the clients saw 503s);
        otherwise the write probe, repeated at most every ``PROBE_EVERY`` seconds.
        """
        return self._health.problem(self.probe_write, self._gone)

    def _gone(self) -> str | None:
        """A deleted database keeps taking commits into the open file, and loses them all."""
        return None if self.path.is_file() else f"the database file {self.path} is gone"

    def probe_write(self) -> str | None:
        """A cheap write probe: the database file is still there, its directory takes a small
        fsynced write (disk full, read-only file system) and the write lock can be taken
        (locked, not a database). Writes nothing into the database itself."""
        if gone := self._gone():
            return gone
        try:
            with tempfile.TemporaryFile(dir=self.path.parent) as probe:
                probe.write(bytes(PROBE_BYTES))
                probe.flush()
                os.fsync(probe.fileno())
        except OSError as exc:
            return f"cannot write in {self.path.parent}: {exc.strerror or exc}"
        try:
            connection = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
            try:
                connection.execute("BEGIN IMMEDIATE")
                connection.execute("SELECT count(*) FROM schema_migrations").fetchone()
                connection.execute("ROLLBACK")
            finally:
                connection.close()
        except sqlite3.Error as exc:
            return f"the event store {self.path} cannot be written: {exc}"
        return None
