"""PostgreSQL event store: several ``serve`` and ``deliver`` processes on one shared truth.

The same guarantees as the SQLite store, across processes and hosts:

* Commit before acknowledge, with group commit: one writer thread per process takes every
  event waiting and stores them in one transaction (``synchronous_commit=on``). A transaction
  advisory lock makes the writers of all processes take turns, so event ids are also commit
  order: a worker that delivers in id order never skips an event still being committed.
* Dedup across instances: a unique index on the dedup key and ``INSERT … ON CONFLICT DO
  NOTHING``; a duplicate answers with the id of the event stored first.
* Outbox: tasks are claimed with ``FOR UPDATE SKIP LOCKED`` and a lease; a strictly ordered
  sink claims under a per-sink advisory lock. ``NOTIFY`` wakes the workers of every process.
* Failures are ``StoreUnavailable`` (503 at the HTTP edge); connections are re-made on the
  next use, so the store recovers by itself when the server is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import orjson
import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from tcwebhook.errors import NotFound, StoreUnavailable
from tcwebhook.store.base import Store, display_url
from tcwebhook.store.postgres.connect import CONNECT_TIMEOUT, connect, conninfo, unavailable
from tcwebhook.store.postgres.migrations import APPEND_LOCK, LOCK_CLASS, migrate
from tcwebhook.store.records import (
    AppendResult,
    NewEvent,
    Outcome,
    StoredEvent,
    TaskRecord,
)
from tcwebhook.store.sqlite import MAX_BATCH, _event_row, _wake_all, decode_body, utc_now

CHANNEL = "tcwebhook_tasks"
POOL_SIZE = 4
NOTIFY_WAIT = 0.5  # seconds the listener waits for a notification before checking for stop
APPEND_TIMEOUT = 10.0  # seconds a request waits for its commit before it is answered 503
_STOP = object()

_TASK_COLUMNS = (
    "id, event_id, target, state, attempts, next_attempt_at, last_error, output, updated_at"
)
_EVENT_COLUMNS = (
    "id, received_at, kind, event_name, message_id, resource_id, number, changed_lines, "
    "method, path, headers, body, fetched, fetched_changed_lines, fetched_at, body_encoding"
)
_INSERT_EVENT = (
    "INSERT INTO events (received_at, kind, event_name, message_id, dedup_key, resource_id, "
    "number, changed_lines, method, path, headers, body, body_encoding) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (dedup_key) DO NOTHING RETURNING id"
)
_INSERT_TASK = (
    "INSERT INTO tasks (event_id, target, state, next_attempt_at, updated_at) "
    "VALUES (%s, %s, 'pending', %s, %s)"
)
# A sink waits for the API fetch of a GET notification, so it can hand on the object.
_UNFINISHED = (
    "target = %s AND state IN ('pending', 'failed', 'running') AND NOT EXISTS ("
    "SELECT 1 FROM tasks f WHERE f.event_id = tasks.event_id AND f.target = '@fetch' "
    "AND f.id != tasks.id AND f.state NOT IN ('done', 'dead'))"
)


class PostgresStore(Store):
    """Durable event store in a PostgreSQL database shared by any number of processes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.location = display_url(url)
        self._conninfo = conninfo(url)
        with connect(self._conninfo, url) as connection:
            try:
                migrate(connection)
            except psycopg.Error as exc:
                raise unavailable(exc, url, "be prepared (migrations)") from None
        self._pool: ConnectionPool | None = None
        self._pool_lock = threading.Lock()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._listener: _Listener | None = None
        self.append_timeout = APPEND_TIMEOUT

    # ---------------------------------------------------------------------------------------
    # Connections

    def _get_pool(self) -> ConnectionPool:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ConnectionPool(
                    self._conninfo,
                    min_size=0,
                    max_size=POOL_SIZE,
                    timeout=CONNECT_TIMEOUT + 2,
                    check=ConnectionPool.check_connection,  # a restarted server: reconnect
                    name="tcwebhook-store",
                    open=True,
                )
            return self._pool

    @contextmanager
    def _connection(self, doing: str) -> Iterator[psycopg.Connection]:
        """A pooled connection in a transaction, committed at the end; driver errors become
        ``StoreUnavailable``."""
        try:
            with self._get_pool().connection() as connection:
                yield connection
        except PoolTimeout as exc:
            raise unavailable(exc, self.url, doing) from None
        except psycopg.Error as exc:
            raise unavailable(exc, self.url, doing) from None

    # ---------------------------------------------------------------------------------------
    # Writing events

    def append(self, event: NewEvent) -> asyncio.Future[AppendResult]:
        if self._writer is None:
            self._writer = threading.Thread(
                target=self._write_loop, name="tcwebhook-store-writer", daemon=True
            )
            self._writer.start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[AppendResult] = loop.create_future()
        # A server that stopped answering without closing the connection (frozen, or packets
        # dropped) enforces no statement_timeout: the request gets its 503 from here instead.
        expiry = loop.call_later(self.append_timeout, _expire, future, self.location)
        future.add_done_callback(lambda _: expiry.cancel())
        self._queue.put((event, future, loop))
        return future

    def append_sync(self, event: NewEvent) -> AppendResult:
        with self._connection("store the event") as connection, connection.transaction():
            return _insert_batch(connection, [event])[0]

    def _write_loop(self) -> None:
        connection: psycopg.Connection | None = None
        try:
            while True:
                batch = [self._queue.get()]
                while len(batch) < MAX_BATCH:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                stop = any(item is _STOP for item in batch)
                batch = [item for item in batch if item is not _STOP]
                if batch:
                    connection = self._write_batch(connection, batch)
                if stop:
                    return
        finally:
            if connection is not None:
                connection.close()

    def _write_batch(
        self, connection: psycopg.Connection | None, batch: list[Any]
    ) -> psycopg.Connection | None:
        """Store ``batch`` in one transaction and answer its requests; returns the connection
        to use next (None after a failure: the next batch connects afresh)."""
        try:
            if connection is None or connection.closed:
                connection = connect(self._conninfo, self.url)
            with connection.transaction():
                results = _insert_batch(connection, [event for event, _, _ in batch])
        except Exception as exc:  # every failure to store must reach the request as a 503
            if connection is not None:
                connection.close()
            error = (
                exc if isinstance(exc, StoreUnavailable) else unavailable(exc, self.url, "commit")
            )
            _wake_all(batch, [error] * len(batch))
            return None
        _wake_all(batch, results)
        return connection

    def close(self) -> None:
        if self._writer is not None:
            self._queue.put(_STOP)
            self._writer.join()
            self._writer = None
        if self._listener is not None:
            self._listener.stop()
            self._listener = None
        with self._pool_lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    def watch(self, wake: Callable[[], None]) -> Callable[[], None]:
        if self._listener is None:
            self._listener = _Listener(self._conninfo)
        return self._listener.add(wake)

    # ---------------------------------------------------------------------------------------
    # The outbox

    def claim_tasks(
        self, target: str, limit: int, lease_seconds: float, strict_order: bool, claimant: str
    ) -> list[TaskRecord]:
        now = time.time()
        claim = (
            "UPDATE tasks SET state = 'running', next_attempt_at = %s, claimed_by = %s, "
            f"updated_at = %s WHERE id = ANY(%s) RETURNING {_TASK_COLUMNS}"
        )
        with self._connection("claim tasks") as connection:
            if strict_order:
                # One claimer per sink at a time, across every process: the leading run of due
                # tasks, stopping at the first one not due (or still running elsewhere).
                connection.execute(
                    "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_CLASS, target)
                )
                rows = connection.execute(
                    f"SELECT id, next_attempt_at FROM tasks WHERE {_UNFINISHED} "
                    "ORDER BY id LIMIT %s",
                    (target, limit),
                ).fetchall()
                ids = []
                for task_id, due in rows:
                    if due > now:
                        break
                    ids.append(task_id)
            else:
                ids = [
                    row[0]
                    for row in connection.execute(
                        f"SELECT id FROM tasks WHERE {_UNFINISHED} AND next_attempt_at <= %s "
                        "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
                        (target, now, limit),
                    )
                ]
            if not ids:
                return []
            claimed = connection.execute(
                claim, (now + lease_seconds, claimant, utc_now(), ids)
            ).fetchall()
        return sorted((TaskRecord(*row) for row in claimed), key=lambda task: task.id)

    def claimants(self) -> list[str]:
        with self._connection("list claims") as connection:
            rows = connection.execute(
                "SELECT DISTINCT claimed_by FROM tasks WHERE state = 'running'"
            ).fetchall()
        return [row[0] for row in rows if row[0]]

    def release_claims(self, claimant: str) -> int:
        with self._connection("release claims") as connection:
            return connection.execute(
                "UPDATE tasks SET state = 'pending', next_attempt_at = %s, updated_at = %s "
                "WHERE state = 'running' AND claimed_by = %s",
                (time.time(), utc_now(), claimant),
            ).rowcount

    def finish_tasks(self, outcomes: Sequence[Outcome], released: Sequence[int] = ()) -> None:
        now = utc_now()
        with self._connection("record deliveries") as connection, connection.cursor() as cursor:
            if outcomes:
                cursor.executemany(
                    "UPDATE tasks SET state = %s, attempts = attempts + 1, last_error = %s, "
                    "output = %s, next_attempt_at = %s, claimed_by = NULL, updated_at = %s "
                    "WHERE id = %s",
                    [
                        (o.state, o.error, o.output, o.next_attempt_at, now, o.task.id)
                        for o in outcomes
                    ],
                )
            if released:
                cursor.execute(
                    "UPDATE tasks SET state = 'pending', next_attempt_at = %s, claimed_by = NULL, "
                    "updated_at = %s WHERE id = ANY(%s)",
                    (time.time(), now, list(released)),
                )

    def attach_fetched(self, event_id: int, fetched: bytes, changed_lines: list[str]) -> None:
        with self._connection("attach the fetched object") as connection:
            connection.execute(
                "UPDATE events SET fetched = %s, fetched_changed_lines = %s, fetched_at = %s "
                "WHERE id = %s",
                (fetched, orjson.dumps(changed_lines).decode(), utc_now(), event_id),
            )

    def previous_fetched(self, resource_id: str, before_event_id: int) -> bytes | None:
        with self._connection("read a fetched object") as connection:
            row = connection.execute(
                "SELECT fetched FROM events WHERE resource_id = %s AND id < %s "
                "AND fetched IS NOT NULL ORDER BY id DESC LIMIT 1",
                (resource_id, before_event_id),
            ).fetchone()
        return bytes(row[0]) if row else None

    def requeue_tasks(
        self, event_id: int | None = None, target: str | None = None, dead_only: bool = False
    ) -> int:
        where = ["state != 'running'"]
        params: list[Any] = []
        if event_id is not None:
            where.append("event_id = %s")
            params.append(event_id)
        if dead_only:
            where.append("state = 'dead'")
        if target is not None:
            where.append("target = %s")
            params.append(target)
        with self._connection("requeue tasks") as connection:
            count = connection.execute(
                "UPDATE tasks SET state = 'pending', attempts = 0, next_attempt_at = %s, "
                f"updated_at = %s WHERE {' AND '.join(where)}",
                (time.time(), utc_now(), *params),
            ).rowcount
            if count:
                connection.execute("SELECT pg_notify(%s, '')", (CHANNEL,))
            return count

    # ---------------------------------------------------------------------------------------
    # Reading

    def status(self) -> dict[str, Any]:
        with self._connection("read the status") as connection:
            kinds = dict(
                connection.execute("SELECT kind, count(*) FROM events GROUP BY kind").fetchall()
            )
            tasks: dict[str, dict[str, int]] = {}
            for target, state, count in connection.execute(
                "SELECT target, state, count(*) FROM tasks GROUP BY target, state"
            ):
                tasks.setdefault(target, {})[state] = count
            row = connection.execute(
                "SELECT min(e.received_at) FROM tasks t JOIN events e ON e.id = t.event_id "
                "WHERE t.state IN ('pending', 'failed', 'running')"
            ).fetchone()
        oldest = row[0] if row else None
        return {"events": kinds, "tasks": tasks, "oldest_unfinished_received_at": oldest}

    def purge(self, before: str, force: bool = False) -> int:
        sql = "DELETE FROM events WHERE received_at < %s"
        if not force:
            sql += (
                " AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.event_id = events.id "
                "AND t.state != 'done')"
            )
        with self._connection("purge events") as connection:
            return connection.execute(sql, (before,)).rowcount

    def iter_events(self, since: str | None = None, batch: int = 500) -> Iterator[StoredEvent]:
        last_id = 0
        while True:
            events = self._events(
                "WHERE id > %s AND received_at >= %s ORDER BY id LIMIT %s",
                (last_id, since or "", batch),
            )
            if not events:
                return
            yield from events
            last_id = events[-1].id

    def count(self) -> int:
        with self._connection("count events") as connection:
            row = connection.execute("SELECT count(*) FROM events").fetchone()
        return int(row[0]) if row else 0

    def list_events(
        self,
        limit: int = 50,
        kind: str | None = None,
        event_name: str | None = None,
        task_state: str | None = None,
    ) -> list[StoredEvent]:
        where: list[str] = []
        params: list[Any] = []
        if task_state:
            where.append(
                "EXISTS (SELECT 1 FROM tasks t WHERE t.event_id = events.id AND t.state = %s)"
            )
            params.append(task_state)
        if kind:
            where.append("kind = %s")
            params.append(kind)
        if event_name:
            where.append("event_name LIKE %s")
            params.append(glob_to_like(event_name))
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        return self._events(f"{clause} ORDER BY id DESC LIMIT %s", (*params, limit))

    def get_event(self, event_id: int) -> StoredEvent:
        events = self._events("WHERE id = %s", (event_id,))
        if not events:
            raise NotFound(f"no event with id {event_id} in {self.location}")
        return events[0]

    def _events(self, clause: str, params: Sequence[Any]) -> list[StoredEvent]:
        """Events selected by ``clause``, each with its tasks (one query for all of them)."""
        with self._connection("read events") as connection:
            rows = connection.execute(f"SELECT {_EVENT_COLUMNS} FROM events {clause}", params)
            rows_list = rows.fetchall()
            tasks: dict[int, list[TaskRecord]] = {}
            if rows_list:
                for task in connection.execute(
                    f"SELECT {_TASK_COLUMNS} FROM tasks WHERE event_id = ANY(%s) ORDER BY id",
                    ([row[0] for row in rows_list],),
                ):
                    tasks.setdefault(task[1], []).append(TaskRecord(*task))
        return [stored_event(row, tasks.get(row[0], [])) for row in rows_list]

    # ---------------------------------------------------------------------------------------
    # Copying (``tcwebhook store copy``)

    @contextmanager
    def copying(self) -> Iterator[psycopg.Connection]:
        """A transaction for ``store copy`` to insert events with their own ids."""
        with self._connection("copy events") as connection, connection.transaction():
            yield connection
            # Events stored after the copy must not reuse the copied ids.
            connection.execute(
                "SELECT setval(pg_get_serial_sequence('events', 'id'), "
                "greatest((SELECT max(id) FROM events), 1))"
            )


def _insert_batch(connection: psycopg.Connection, events: Sequence[NewEvent]) -> list[AppendResult]:
    """Insert events (skipping duplicates) and their tasks inside the caller's transaction."""
    # Writers of every process take turns: ids are then commit order, and two instances
    # inserting the same keys in different orders cannot deadlock.
    connection.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, APPEND_LOCK))
    ids: list[int | None] = []
    with connection.cursor() as cursor:
        cursor.executemany(_INSERT_EVENT, [_event_row(event) for event in events], returning=True)
        while True:
            row = cursor.fetchone()
            ids.append(row[0] if row else None)
            if not cursor.nextset():
                break
        missing = [event.dedup_key for event, id_ in zip(events, ids, strict=True) if id_ is None]
        existing: dict[str, int] = {}
        if missing:
            cursor.execute("SELECT dedup_key, id FROM events WHERE dedup_key = ANY(%s)", (missing,))
            existing = dict(cursor.fetchall())
        results: list[AppendResult] = []
        tasks: list[tuple[int, str, float, str]] = []
        now = time.time()
        for event, event_id in zip(events, ids, strict=True):
            if event_id is None:
                results.append(AppendResult(existing[event.dedup_key or ""], duplicate=True))
                continue
            results.append(AppendResult(event_id, duplicate=False))
            tasks.extend((event_id, target, now, event.received_at) for target in event.tasks)
        if tasks:
            cursor.executemany(_INSERT_TASK, tasks)
            cursor.execute("SELECT pg_notify(%s, '')", (CHANNEL,))  # delivered at commit
    return results


def _expire(future: asyncio.Future[AppendResult], location: str) -> None:
    if not future.done():  # if it commits later, Tradecloud's retry is answered as a duplicate
        future.set_exception(
            StoreUnavailable(f"the PostgreSQL store {location} did not commit in time")
        )


def glob_to_like(pattern: str) -> str:
    """A shell glob (``Order*``, ``?``) as a LIKE pattern, with LIKE's own wildcards escaped."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def stored_event(row: Sequence[Any], tasks: Sequence[TaskRecord]) -> StoredEvent:
    """A row of ``_EVENT_COLUMNS`` and its tasks as a StoredEvent."""
    return StoredEvent(
        id=row[0],
        received_at=row[1],
        kind=row[2],
        event_name=row[3],
        message_id=row[4],
        resource_id=row[5],
        number=row[6],
        changed_lines=tuple(orjson.loads(row[7])),
        method=row[8],
        path=row[9],
        headers=orjson.loads(row[10]),
        body=decode_body(row[11], row[15]),
        fetched=bytes(row[12]) if row[12] is not None else None,
        fetched_changed_lines=tuple(orjson.loads(row[13])) if row[13] else None,
        fetched_at=row[14],
        tasks=tuple(tasks),
    )


class _Listener:
    """One thread per process that LISTENs for new tasks and wakes the local workers."""

    def __init__(self, info: str) -> None:
        self._conninfo = info
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tcwebhook-listen", daemon=True)
        self._thread.start()

    def add(self, wake: Callable[[], None]) -> Callable[[], None]:
        with self._lock:
            self._callbacks.append(wake)

        def remove() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._callbacks.remove(wake)

        return remove

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def _fire(self) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
        for wake in callbacks:
            wake()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self._fire()  # anything stored while we were not listening
                    while not self._stopping.is_set():
                        for _ in connection.notifies(timeout=NOTIFY_WAIT, stop_after=1):
                            self._fire()
            except psycopg.Error:
                # The server is away: the workers' poll is the backstop; try again shortly.
                self._stopping.wait(1.0)
