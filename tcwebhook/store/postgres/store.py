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
import dataclasses
import hashlib
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
from tcwebhook.store.common import (
    DROP_LEASE,
    EVENT_COLUMNS,
    GET_CURSOR,
    INSERT_COLUMNS,
    KEEP_LEASE,
    LAST_RUN,
    MAX_BATCH,
    POSTGRES,
    PREVIOUS_FETCHED,
    RECORD_RUN,
    SET_CURSOR,
    STATUS_HEADS,
    STATUS_KINDS,
    STATUS_OLDEST,
    STATUS_TASKS,
    TAKE_LEASE,
    TASK_COLUMNS,
    TRIM_RUNS,
    CommitHealth,
    decode_body,
    event_row,
    event_tasks_query,
    list_filters,
    page_ids_query,
    requeue_query,
    status_report,
    stored_event,
    tasks_by_event,
    utc_now,
    wake_all,
)
from tcwebhook.store.postgres.connect import CONNECT_TIMEOUT, connect, conninfo, unavailable
from tcwebhook.store.postgres.migrations import (
    APPEND_LOCK,
    LOCK_CLASS,
    PROBE_LOCK,
    migrate,
    pending,
)
from tcwebhook.store.records import (
    AppendResult,
    EventQuery,
    KnownObject,
    NewEvent,
    Outcome,
    StoredEvent,
    TaskRecord,
)

CHANNEL = "tcwebhook_tasks"
POOL_SIZE = 4
NOTIFY_WAIT = 0.5  # seconds the listener waits for a notification before checking for stop
APPEND_TIMEOUT = 10.0  # seconds a request waits for its commit before it is answered 503
_STOP = object()
# A btree index entry holds at most about 2.7 kB: a longer value in an indexed column would make
# its insert fail on every retry. Longer descriptive values are cut (the body is kept whole),
# longer keys replaced by their hash. Characters, so at most 4 bytes each.
MAX_INDEXED = 600

# A webhook whose change reconcile has already stored as a recovered event (whose dedup_key is
# that change key) is a duplicate too: ``dedup_key = NULL`` matches nothing, so a webhook
# without a change key is only checked by the unique index.
_INSERT_EVENT = (
    f"INSERT INTO events ({INSERT_COLUMNS}) "
    "SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s "
    "WHERE NOT EXISTS (SELECT 1 FROM events WHERE dedup_key = %s) "
    "ON CONFLICT (dedup_key) DO NOTHING RETURNING id"
)
_INSERT_TASK = (
    "INSERT INTO tasks (event_id, target, state, next_attempt_at, updated_at) "
    "VALUES (%s, %s, 'pending', %s, %s)"
)
# A sink waits for the API fetch of a GET notification, so it can hand on the object.
_WAITS_FOR_FETCH = (
    "EXISTS (SELECT 1 FROM tasks f WHERE f.event_id = tasks.event_id AND f.target = '@fetch' "
    "AND f.id != tasks.id AND f.state NOT IN ('done', 'dead'))"
)
_UNFINISHED_OF_TARGET = "target = %s AND state IN ('pending', 'failed', 'running')"
_UNFINISHED = f"{_UNFINISHED_OF_TARGET} AND NOT {_WAITS_FOR_FETCH}"


class PostgresStore(Store):
    """Durable event store in a PostgreSQL database shared by any number of processes."""

    def __init__(self, url: str, *, read_only: bool = False, create: bool = True) -> None:
        """``read_only``: never migrate, every transaction read-only; ``create=False``: a
        database without our schema is an error, not a new empty store."""
        self.url = url
        self.location = display_url(url)
        self.read_only = read_only
        self._conninfo = conninfo(url, read_only=read_only)
        with connect(self._conninfo, url) as connection:
            try:
                missing = pending(connection)
                if missing is None and (read_only or not create):
                    raise StoreUnavailable(
                        f"there is no event store in {self.location}: nothing was received "
                        "there yet (start 'tcwebhook serve') or store.url points elsewhere"
                    )
                if read_only and missing:
                    raise StoreUnavailable(
                        f"{self.location} is not an event store of this version of tcwebhook "
                        f"(it lacks {', '.join(missing)}); start 'tcwebhook serve' or run "
                        "'tcwebhook deliver --once' on it to upgrade it"
                    )
                if not read_only and missing != []:
                    connection.rollback()
                    migrate(connection)
            except psycopg.Error as exc:
                raise unavailable(exc, url, "be prepared (migrations)") from None
        self._health = CommitHealth()
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

    @contextmanager
    def _reading(self, doing: str) -> Iterator[psycopg.Connection]:
        """A pooled connection in a read-only transaction."""
        with self._connection(doing) as connection:
            connection.execute("SET TRANSACTION READ ONLY")
            yield connection

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
        self._queue.put((fit_indexes(event), future, loop))
        return future

    def append_sync(self, event: NewEvent) -> AppendResult:
        with self._connection("store the event") as connection, connection.transaction():
            return _insert_batch(connection, [fit_indexes(event)])[0]

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
        started = time.perf_counter()
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
            self._health.failed(str(error))
            wake_all(batch, [error] * len(batch))
            return None
        if self.commit_observer is not None:
            self.commit_observer(len(batch), time.perf_counter() - started)
        self._health.committed()
        wake_all(batch, results)
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

    # ---------------------------------------------------------------------------------------
    # The outbox

    def claim_tasks(
        self, target: str, limit: int, lease_seconds: float, strict_order: bool, claimant: str
    ) -> list[TaskRecord]:
        now = time.time()
        claim = (
            "UPDATE tasks SET state = 'running', next_attempt_at = %s, claimed_by = %s, "
            f"updated_at = %s WHERE id = ANY(%s) RETURNING {TASK_COLUMNS}"
        )
        with self._connection("claim tasks") as connection:
            if strict_order:
                # One claimer per sink at a time, across every process: the leading run of due
                # tasks, stopping at the first one not due (or still running elsewhere, or
                # waiting for its fetch: the events after it wait too).
                connection.execute(
                    "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_CLASS, target)
                )
                rows = connection.execute(
                    f"SELECT id, next_attempt_at, {_WAITS_FOR_FETCH} FROM tasks "
                    f"WHERE {_UNFINISHED_OF_TARGET} ORDER BY id LIMIT %s",
                    (target, limit),
                ).fetchall()
                ids = []
                for task_id, due, waits_for_fetch in rows:
                    if due > now or waits_for_fetch:
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

    def targets(self) -> list[str]:
        with self._reading("list targets") as connection:
            rows = connection.execute("SELECT DISTINCT target FROM tasks ORDER BY target")
            return [str(row[0]) for row in rows]

    def claimants(self) -> list[str]:
        with self._reading("list claims") as connection:
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
        with self._reading("read a fetched object") as connection:
            row = connection.execute(
                POSTGRES.sql(PREVIOUS_FETCHED), (resource_id, before_event_id)
            ).fetchone()
        return bytes(row[0]) if row else None

    def requeue_tasks(
        self, event_id: int | None = None, target: str | None = None, dead_only: bool = False
    ) -> int:
        sql, params = requeue_query(POSTGRES, event_id, target, dead_only)
        with self._connection("requeue tasks") as connection:
            count = connection.execute(sql, (time.time(), utc_now(), *params)).rowcount
            if count:
                connection.execute("SELECT pg_notify(%s, '')", (CHANNEL,))
            return count

    # ---------------------------------------------------------------------------------------
    # Reading

    def status(self) -> dict[str, Any]:
        with self._reading("read the status") as connection:
            oldest = connection.execute(STATUS_OLDEST).fetchone()
            return status_report(
                connection.execute(STATUS_KINDS).fetchall(),
                connection.execute(STATUS_TASKS).fetchall(),
                oldest[0] if oldest else None,
                connection.execute(STATUS_HEADS).fetchall(),
            )

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
        with self._reading("count events") as connection:
            row = connection.execute("SELECT count(*) FROM events").fetchone()
        return int(row[0]) if row else 0

    def list_events(
        self,
        limit: int = 50,
        kind: str | None = None,
        event_name: str | None = None,
        task_state: str | None = None,
    ) -> list[StoredEvent]:
        where, params = list_filters(POSTGRES, kind, event_name, task_state)
        return self._events(f"{where} ORDER BY id DESC LIMIT %s", (*params, limit))

    def get_event(self, event_id: int) -> StoredEvent:
        events = self._events("WHERE id = %s", (event_id,)) if 0 < event_id < 2**63 else []
        if not events:
            raise NotFound(f"no event with id {event_id} in {self.location}")
        return events[0]

    def _events(self, clause: str, params: Sequence[Any]) -> list[StoredEvent]:
        """Events selected by ``clause``, each with its tasks (one query for all of them)."""
        with self._reading("read events") as connection:
            rows = connection.execute(f"SELECT {EVENT_COLUMNS} FROM events {clause}", params)
            rows_list = rows.fetchall()
            tasks: dict[int, list[TaskRecord]] = {}
            if rows_list:
                tasks = tasks_by_event(
                    connection.execute(
                        f"SELECT {TASK_COLUMNS} FROM tasks WHERE event_id = ANY(%s) ORDER BY id",
                        ([row[0] for row in rows_list],),
                    )
                )
        return [stored_event(row, tasks.get(row[0], [])) for row in rows_list]

    # ---------------------------------------------------------------------------------------
    # Browsing (the inspector): keyset paging, each query served by an index (0006)

    def latest_event_id(self) -> int:
        with self._reading("read the newest event id") as connection:
            row = connection.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()
        return int(row[0]) if row else 0

    def event_tasks(self, event_ids: Sequence[int]) -> dict[int, list[TaskRecord]]:
        if not event_ids:
            return {}
        sql, params = event_tasks_query(POSTGRES, event_ids)
        with self._reading("read the tasks of events") as connection:
            return tasks_by_event(connection.execute(sql, params))

    def page_events(self, query: EventQuery) -> list[StoredEvent]:
        sql, params = page_ids_query(POSTGRES, query)
        with self._reading("read a page of events") as connection:
            ids = [row[0] for row in connection.execute(sql, params)]
        if not ids:
            return []
        return self._events("WHERE id = ANY(%s) ORDER BY id DESC", (ids,))

    def resource_events(self, resource_id: str, limit: int = 500) -> list[StoredEvent]:
        return self._events("WHERE resource_id = %s ORDER BY id LIMIT %s", (resource_id, limit))

    def previous_event(self, resource_id: str, before_event_id: int) -> StoredEvent | None:
        events = self._events(
            "WHERE resource_id = %s AND id < %s ORDER BY id DESC LIMIT 1",
            (resource_id, before_event_id),
        )
        return events[0] if events else None

    # ---------------------------------------------------------------------------------------
    # Reconcile: what is known per object, recovered events, cursors, runs and leases

    def known_objects(
        self, change_kinds: Sequence[str], fetch_kind: str, resource_ids: Sequence[str]
    ) -> dict[str, KnownObject]:
        """One query for all ids: per id, three index lookups (LATERAL)."""
        sql = (
            "SELECT r.id, c.change_key, c.kind, c.body, c.body_encoding, "
            "l.body, l.body_encoding, f.fetched FROM unnest(%(ids)s::text[]) AS r(id) "
            "LEFT JOIN LATERAL (SELECT change_key, kind, body, body_encoding FROM events "
            "WHERE resource_id = r.id AND change_key IS NOT NULL AND kind = ANY(%(kinds)s) "
            "ORDER BY change_key DESC LIMIT 1) c ON true "
            # Events stored before migration 0005 have no change key: their bodies tell.
            "LEFT JOIN LATERAL (SELECT body, body_encoding FROM events "
            "WHERE resource_id = r.id AND change_key IS NULL AND kind = ANY(%(kinds)s) "
            "ORDER BY id DESC LIMIT 1) l ON true "
            "LEFT JOIN LATERAL (SELECT fetched FROM events WHERE resource_id = r.id "
            "AND kind = %(fetch)s AND fetched IS NOT NULL ORDER BY id DESC LIMIT 1) f ON true"
        )
        params = {"ids": list(resource_ids), "kinds": list(change_kinds), "fetch": fetch_kind}
        with self._reading("read what is known of objects") as connection:
            rows = connection.execute(sql, params).fetchall()
        return {
            row[0]: KnownObject(
                row[0],
                row[1],
                row[2],
                decode_body(row[3], row[4]) if row[1] is not None else None,
                decode_body(row[5], row[6]) if row[5] is not None else None,
                bytes(row[7]) if row[7] is not None else None,
            )
            for row in rows
        }

    def append_recovered(self, events: Sequence[NewEvent]) -> list[AppendResult]:
        """Store recovered events (with their tasks) in one transaction. One whose change is
        already stored, by a webhook or an earlier run, is a duplicate of that event."""
        if not events:
            return []
        events = [fit_indexes(event) for event in events]
        with self._connection("store recovered events") as connection:
            # Under the append lock: no webhook of the same change commits in between.
            connection.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, APPEND_LOCK))
            stored = dict(
                connection.execute(
                    "SELECT DISTINCT ON (resource_id, change_key) "
                    "resource_id || ' ' || change_key, id FROM events "
                    "WHERE (resource_id, change_key) IN "
                    "(SELECT * FROM unnest(%s::text[], %s::text[])) "
                    "ORDER BY resource_id, change_key, id",
                    (
                        [event.resource_id for event in events],
                        [event.change_key for event in events],
                    ),
                ).fetchall()
            )
            new = [e for e in events if f"{e.resource_id} {e.change_key}" not in stored]
            inserted = iter(_insert_batch(connection, new) if new else [])
            return [
                AppendResult(stored[key], duplicate=True)
                if (key := f"{event.resource_id} {event.change_key}") in stored
                else next(inserted)
                for event in events
            ]

    def reconcile_cursor(self, endpoint: str) -> str | None:
        with self._reading("read the reconcile cursor") as connection:
            row = connection.execute(POSTGRES.sql(GET_CURSOR), (endpoint,)).fetchone()
        return row[0] if row else None

    def set_reconcile_cursor(self, endpoint: str, last_updated_at: str) -> None:
        with self._connection("store the reconcile cursor") as connection:
            connection.execute(POSTGRES.sql(SET_CURSOR), (endpoint, last_updated_at, utc_now()))

    def record_reconcile_run(self, result: dict[str, Any], keep: int = 100) -> None:
        with self._connection("record the reconcile run") as connection:
            connection.execute(POSTGRES.sql(RECORD_RUN), (utc_now(), orjson.dumps(result).decode()))
            connection.execute(POSTGRES.sql(TRIM_RUNS), (keep,))

    def last_reconcile_run(self) -> dict[str, Any] | None:
        with self._reading("read the last reconcile run") as connection:
            row = connection.execute(LAST_RUN).fetchone()
        return orjson.loads(row[0]) if row else None

    def acquire_lease(self, name: str, holder: str, expires_at: float) -> bool:
        """One statement, atomic across processes and hosts."""
        with self._connection("take a lease") as connection:
            row = connection.execute(
                POSTGRES.sql(TAKE_LEASE) + " RETURNING holder",
                (name, holder, expires_at, time.time()),
            ).fetchone()
        return row is not None

    def release_lease(self, name: str, holder: str, keep_until: float | None = None) -> None:
        with self._connection("release a lease") as connection:
            if keep_until is None:
                connection.execute(POSTGRES.sql(DROP_LEASE), (name, holder))
            else:
                connection.execute(POSTGRES.sql(KEEP_LEASE), (keep_until, name, holder))

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
        rows = [(*event_row(event), event.change_key) for event in events]
        cursor.executemany(_INSERT_EVENT, rows, returning=True)
        while True:
            row = cursor.fetchone()
            ids.append(row[0] if row else None)
            if not cursor.nextset():
                break
        # A duplicate: of the event with its own key, else of the one recovered for its change.
        missing = [
            key
            for event, id_ in zip(events, ids, strict=True)
            if id_ is None
            for key in (event.dedup_key, event.change_key)
            if key is not None
        ]
        existing: dict[str | None, int] = {}
        if missing:
            cursor.execute("SELECT dedup_key, id FROM events WHERE dedup_key = ANY(%s)", (missing,))
            existing = dict(cursor.fetchall())
        results: list[AppendResult] = []
        tasks: list[tuple[int, str, float, str]] = []
        now = time.time()
        for event, event_id in zip(events, ids, strict=True):
            if event_id is None:
                first = existing.get(event.dedup_key) or existing[event.change_key]
                results.append(AppendResult(first, duplicate=True))
                continue
            results.append(AppendResult(event_id, duplicate=False))
            tasks.extend((event_id, target, now, event.received_at) for target in event.tasks)
        if tasks:
            cursor.executemany(_INSERT_TASK, tasks)
            cursor.execute("SELECT pg_notify(%s, '')", (CHANNEL,))  # delivered at commit
    return results


def fit_indexes(event: NewEvent) -> NewEvent:
    """``event`` with every indexed value short enough for its index (see MAX_INDEXED)."""
    texts = (event.event_name, event.message_id, event.resource_id, event.number)
    keys = (event.dedup_key, event.change_key)
    if all(value is None or len(value) <= MAX_INDEXED for value in (*texts, *keys)):
        return event
    event_name, message_id, resource_id, number = (
        value[:MAX_INDEXED] if value is not None else None for value in texts
    )
    dedup, change = (
        "h:" + hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()
        if value is not None and len(value) > MAX_INDEXED
        else value
        for value in keys
    )
    return dataclasses.replace(
        event,
        event_name=event_name,
        message_id=message_id,
        resource_id=resource_id,
        number=number,
        dedup_key=dedup,
        change_key=change,
    )


class _RollBack(Exception):
    """Ends the write probe's transaction without committing it."""


def _expire(future: asyncio.Future[AppendResult], location: str) -> None:
    if not future.done():  # if it commits later, Tradecloud's retry is answered as a duplicate
        future.set_exception(
            StoreUnavailable(f"the PostgreSQL store {location} did not commit in time")
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
