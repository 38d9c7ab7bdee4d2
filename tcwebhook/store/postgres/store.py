"""PostgreSQL event store: several ``serve`` and ``deliver`` processes on one shared truth.

The same guarantees as the SQLite store, across processes and hosts. Each concern lives in its
own module; this class puts them together: opening and the connection pool
(``connection.py``), the write path (``writer.py``, under the shared ``GroupCommitLoop``), the
outbox (``outbox.py``), the reads (``queries.py``), reconcile's state (``reconcile.py``) and
waking the workers of every process (``listen.py``), plus the health checks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg

from tcwebhook.errors import StoreUnavailable
from tcwebhook.store.base import Store
from tcwebhook.store.commits import CommitHealth, GroupCommitLoop
from tcwebhook.store.postgres.connect import connect, unavailable
from tcwebhook.store.postgres.listen import TaskListener
from tcwebhook.store.postgres.migrations import LOCK_CLASS, PROBE_LOCK
from tcwebhook.store.postgres.outbox import PostgresOutbox
from tcwebhook.store.postgres.queries import PostgresQueries
from tcwebhook.store.postgres.reconcile import PostgresReconcileState
from tcwebhook.store.postgres.requests import PostgresRequests
from tcwebhook.store.postgres.writer import PostgresCommitter, fit_indexes, insert_batch
from tcwebhook.store.records import AppendResult, NewEvent

APPEND_TIMEOUT = 10.0  # seconds a request waits for its commit before it is answered 503


class PostgresStore(
    PostgresQueries, PostgresOutbox, PostgresReconcileState, PostgresRequests, Store
):
    """Durable event store in a PostgreSQL database shared by any number of processes."""

    def __init__(self, url: str, *, read_only: bool = False, create: bool = True) -> None:
        """Open (migrate) the store at ``url``; the options as ``PostgresDatabase``."""
        super().__init__(url, read_only=read_only, create=create)
        self._health = CommitHealth()
        self._writer = GroupCommitLoop(PostgresCommitter(self._conninfo, url), self._health)
        self._queue = self._writer.queue
        self._writing = False  # the writer thread runs
        self._listener: TaskListener | None = None
        self.append_timeout = APPEND_TIMEOUT

    @property
    def commit_observer(self) -> Callable[[int, float], None] | None:
        """Called in the writer thread after each commit with (events, seconds): metrics."""
        return self._writer.commit_observer

    @commit_observer.setter
    def commit_observer(self, observer: Callable[[int, float], None] | None) -> None:
        self._writer.commit_observer = observer

    # ---------------------------------------------------------------------------------------
    # Writing

    def append(self, event: NewEvent) -> asyncio.Future[AppendResult]:
        if not self._writing:
            self._writer.start()
            self._writing = True
        loop = asyncio.get_running_loop()
        future: asyncio.Future[AppendResult] = loop.create_future()
        # A server that stopped answering without closing the connection (frozen, or packets
        # dropped) enforces no statement_timeout: the request gets its 503 from here instead.
        expiry = loop.call_later(self.append_timeout, _expire, future, self.location)
        future.add_done_callback(lambda _: expiry.cancel())
        self._queue.put((fit_indexes(event), future, loop))
        return future

    def append_sync(self, event: NewEvent) -> AppendResult:
        with self.writing("store the event") as connection, connection.transaction():
            return insert_batch(connection, [fit_indexes(event)])[0]

    def close(self) -> None:
        self._writing = False
        self._writer.close()
        if self._listener is not None:
            self._listener.stop()
            self._listener = None
        self.close_pool()

    def watch(self, wake: Callable[[], None]) -> Callable[[], None]:
        """``NOTIFY`` wakes the workers of every process when tasks are stored or requeued."""
        if self._listener is None:
            self._listener = TaskListener(self._conninfo)
        return self._listener.add(wake)

    @contextmanager
    def copying(self) -> Iterator[psycopg.Connection]:
        """A transaction for ``store copy`` to insert events with their own ids."""
        with self.writing("copy events") as connection, connection.transaction():
            yield connection
            # Events stored after the copy must not reuse the copied ids.
            connection.execute(
                "SELECT setval(pg_get_serial_sequence('events', 'id'), "
                "greatest((SELECT max(id) FROM events), 1))"
            )

    # ---------------------------------------------------------------------------------------
    # Health

    def problem(self) -> str | None:
        """Why the store cannot take events now, or None (for /healthz; blocking).

        A commit that failed recently counts until a later one succeeds; otherwise the write
        probe, repeated at most every few seconds.
        """
        return self._health.problem(self.probe_write, lambda: None)

    def probe_write(self) -> str | None:
        """A real write that is rolled back: the server takes connections, is not a standby
        (or in read-only mode) and can write a row; bounded by short timeouts."""
        try:
            with connect(self._conninfo, self.url) as connection, connection.transaction():
                connection.execute("SET TRANSACTION READ WRITE")
                connection.execute("SET LOCAL statement_timeout = 2000")
                connection.execute("SET LOCAL lock_timeout = 1000")
                row = connection.execute("SELECT pg_is_in_recovery()").fetchone()
                if row and row[0]:
                    return f"the PostgreSQL store {self.location} is a read-only standby"
                # Probes of several processes must not wait on each other's uncommitted row.
                connection.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, PROBE_LOCK))
                connection.execute(
                    "INSERT INTO leases (name, holder, expires_at) VALUES ('probe', '', 0) "
                    "ON CONFLICT (name) DO UPDATE SET expires_at = 0"
                )
                raise _RollBack
        except _RollBack:
            return None
        except StoreUnavailable as exc:
            return str(exc)
        except psycopg.Error as exc:
            return str(unavailable(exc, self.url, "write"))


class _RollBack(Exception):
    """Ends the write probe's transaction without committing it."""


def _expire(future: asyncio.Future[AppendResult], location: str) -> None:
    if not future.done():  # if it commits later, Tradecloud's retry is answered as a duplicate
        future.set_exception(
            StoreUnavailable(f"the PostgreSQL store {location} did not commit in time")
        )
