"""SQLite event store: WAL, ``synchronous=FULL``, group commit.

One writer thread owns the write connection. Requests queue their rows; the writer takes every
row waiting, inserts them in one transaction and commits once (one fsync for the batch), then
wakes each request. A request is answered only after its own commit, so every 2xx still means
"on disk", while many concurrent requests share the cost of one fsync.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import queue
import sqlite3
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from tcwebhook.errors import NotFound, StoreUnavailable
from tcwebhook.store.base import Store
from tcwebhook.store.common import (
    DROP_LEASE,
    EVENT_COLUMNS,
    GET_CURSOR,
    INSERT_COLUMNS,
    KEEP_LEASE,
    LAST_RUN,
    PREVIOUS_FETCHED,
    RECORD_RUN,
    SET_CURSOR,
    SQLITE,
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
    list_filters,
    page_ids_query,
    requeue_query,
    status_report,
    stored_event,
    utc_now,
)
from tcwebhook.store.migrations import migrate, pending
from tcwebhook.store.records import (
    AppendResult,
    EventQuery,
    KnownObject,
    NewEvent,
    Outcome,
    StoredEvent,
    TaskRecord,
)

MAX_BATCH = 512
# The writer checkpoints itself only if the checkpointer thread falls this far behind (pages).
WRITER_AUTOCHECKPOINT = 16384
# Wake the checkpointer after about this much has been committed (SQLite's default automatic
# checkpoint is 1000 pages): checkpointing after every small commit costs more fsyncs.
CHECKPOINT_EVERY_BYTES = 4 * 1024 * 1024
_STOP = object()
PROBE_BYTES = 64 * 1024

# A webhook whose change reconcile has already stored as a recovered event (whose dedup_key is
# that change key) is a duplicate too: the same change is stored once, whoever came first.
_INSERT_EVENT = (
    f"INSERT INTO events ({INSERT_COLUMNS}) "
    "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?14 "
    "WHERE ?14 IS NULL OR NOT EXISTS (SELECT 1 FROM events WHERE dedup_key = ?14) "
    "ON CONFLICT (dedup_key) DO NOTHING"
)
_INSERT_TASK = (
    "INSERT INTO tasks (event_id, target, state, next_attempt_at, updated_at) "
    "VALUES (?, ?, 'pending', ?, ?)"
)


class SqliteStore(Store):
    """Durable event store in one SQLite file."""

    def __init__(
        self,
        path: Path,
        busy_timeout: float = 2.0,
        *,
        read_only: bool = False,
        create: bool = True,
    ) -> None:
        """``read_only``: never write, create or migrate (works on a read-only copy);
        ``create=False``: a database that is not there is an error, not a new empty one."""
        self.path = path
        self.busy_timeout = busy_timeout
        self._uri: str | None = None  # set for read-only connections
        if (read_only or not create) and not path.is_file():
            raise StoreUnavailable(
                f"there is no event store at {path}: nothing was received there yet "
                "(start 'tcwebhook serve') or data_dir / store.url points elsewhere"
            )
        try:
            if read_only:
                self._open_read_only()
            else:
                self._create_private(path)
                connection = self._connect()
                try:
                    self._use_wal(connection)
                    migrate(connection)
                finally:
                    connection.close()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open the event store {path}: {exc}") from None
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot create the event store {path}: {exc.strerror}; "
                "check the data_dir / store.url setting and its permissions"
            ) from None
        self._health = CommitHealth()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._lock = threading.Lock()
        self._writers_lock: int | None = None  # file descriptor, see coordinate_writers
        # Called in the writer thread after each commit with (events, seconds): metrics.
        self.commit_observer: Callable[[int, float], None] | None = None

    @staticmethod
    def _create_private(path: Path) -> None:
        """Order data is for this user only: the directory 0700, the database 0600 (SQLite
        gives the -wal and -shm files the database file's permissions)."""
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))

    def _use_wal(self, connection: sqlite3.Connection) -> None:
        """Switch to WAL. Two processes opening a fresh database at once both try; SQLite does
        not wait on its busy handler for that, so wait here (up to the busy timeout)."""
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                connection.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _open_read_only(self) -> None:
        """``mode=ro``; where even that needs to write (a WAL database in a read-only
        directory cannot create its -shm file), ``immutable=1``."""
        location = urllib.parse.quote(str(self.path))
        last: sqlite3.Error | None = None
        for mode in ("mode=ro", "immutable=1"):
            self._uri = f"file:{location}?{mode}"
            try:
                connection = self._connect()
                try:
                    missing = pending(connection)
                finally:
                    connection.close()
            except sqlite3.OperationalError as exc:
                last = exc
                continue
            if missing:
                raise StoreUnavailable(
                    f"{self.path} is not an event store of this version of tcwebhook "
                    f"(it lacks {', '.join(missing)}); run 'tcwebhook deliver --once' on it "
                    "to upgrade it, or check data_dir / store.url"
                )
            return
        assert last is not None
        raise last

    def coordinate_writers(self) -> None:
        """Several processes write this store at once (``serve --workers``): take turns.

        SQLite's busy handler sleeps 1, 2, 5, 10 ms ... before retrying a taken write lock,
        far longer than one group commit takes; a blocking file lock wakes the next writer
        the moment the previous one commits.
        """
        if self._writers_lock is None:
            lock_path = self.path.with_name(self.path.name + ".writers.lock")
            self._writers_lock = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self._uri or self.path,
            timeout=self.busy_timeout,
            isolation_level=None,
            check_same_thread=False,
            uri=self._uri is not None,
        )
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("PRAGMA foreign_keys=ON")
        return connection

    # ---------------------------------------------------------------------------------------
    # Writing

    def append(self, event: NewEvent) -> asyncio.Future[AppendResult]:
        """Store one event (and its tasks); the future is done once it is committed to disk.

        A plain function returning the future, not a coroutine: one frame less per request.
        """
        if self._writer is None:
            self._ensure_writer()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[AppendResult] = loop.create_future()
        self._queue.put((event, future, loop))
        return future

    def append_sync(self, event: NewEvent) -> AppendResult:
        """Blocking ``append`` in its own transaction (tools and tests; no group commit)."""
        with self.writing() as connection:
            return self._insert(connection, event)

    def _ensure_writer(self) -> None:
        if self._writer is None:
            with self._lock:
                if self._writer is None:
                    self._writer = threading.Thread(
                        target=self._write_loop, name="tcwebhook-store-writer", daemon=True
                    )
                    self._writer.start()

    def _write_loop(self) -> None:
        connection = self._connect()
        connection.execute(f"PRAGMA wal_autocheckpoint={WRITER_AUTOCHECKPOINT}")
        checkpointer = _Checkpointer(self)
        unchecked = 0  # bytes committed since the checkpointer was last woken (roughly)
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
                    self._write_batch(connection, batch)
                    unchecked += sum(len(event.body) + 512 for event, _, _ in batch)
                    if unchecked >= CHECKPOINT_EVERY_BYTES:
                        checkpointer.wake()
                        unchecked = 0
                if stop:
                    return
        finally:
            checkpointer.stop()
            connection.close()

    def _write_batch(self, connection: sqlite3.Connection, batch: list[Any]) -> None:
        results: list[AppendResult] = []
        lock = self._writers_lock
        started = time.perf_counter()
        try:
            if lock is not None:
                fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                connection.execute("BEGIN IMMEDIATE")
                try:
                    results = self._insert_many(connection, [event for event, _, _ in batch])
                    connection.execute("COMMIT")
                except BaseException:
                    _rollback(connection)
                    raise
            finally:
                if lock is not None:
                    fcntl.flock(lock, fcntl.LOCK_UN)
        except Exception as exc:  # every failure to store must reach the request as a 503
            self._health.failed(str(exc))
            error = StoreUnavailable(f"the event store could not commit: {exc}")
            _wake_all(batch, [error] * len(batch))
            return
        if self.commit_observer is not None:
            self.commit_observer(len(batch), time.perf_counter() - started)
        self._health.committed()
        _wake_all(batch, results)

    def _insert(self, connection: sqlite3.Connection, event: NewEvent) -> AppendResult:
        return self._insert_many(connection, [event])[0]

    def _insert_many(
        self, connection: sqlite3.Connection, events: Sequence[NewEvent]
    ) -> list[AppendResult]:
        """Insert events (skipping duplicates) and their tasks inside the caller's transaction.

        One ``executemany`` for the whole batch keeps the per-row Python work small. The caller
        holds the write lock, so the rows numbered above the previous maximum are exactly the
        ones inserted here, in order; an event whose key is not among them was a duplicate.
        """
        before = connection.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
        connection.executemany(_INSERT_EVENT, map(event_row, events))
        inserted = connection.execute(
            "SELECT id, dedup_key FROM events WHERE id > ? ORDER BY id", (before,)
        ).fetchall()
        results: list[AppendResult] = []
        tasks: list[tuple[int, str, float, str]] = []
        now = time.time()
        position = 0
        for event in events:
            if position < len(inserted) and inserted[position][1] == event.dedup_key:
                event_id = inserted[position][0]
                position += 1
                results.append(AppendResult(event_id, duplicate=False))
                tasks.extend((event_id, target, now, event.received_at) for target in event.tasks)
            else:
                existing = connection.execute(
                    "SELECT id FROM events WHERE dedup_key IN (?, ?) "
                    "ORDER BY dedup_key = ? DESC LIMIT 1",
                    (event.dedup_key, event.change_key, event.dedup_key),
                ).fetchone()
                results.append(AppendResult(existing[0], duplicate=True))
        if tasks:
            connection.executemany(_INSERT_TASK, tasks)
        return results

    def close(self) -> None:
        """Let the writer finish what is queued, then stop it."""
        if self._writer is not None:
            self._queue.put(_STOP)
            self._writer.join()
            self._writer = None
        if self._writers_lock is not None:
            os.close(self._writers_lock)
            self._writers_lock = None

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

    # ---------------------------------------------------------------------------------------
    # Tasks (the outbox). Blocking calls: the delivery worker runs them in a thread.

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """A short write transaction on its own connection."""
        with self.reading() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
                connection.execute("COMMIT")
            except BaseException:
                _rollback(connection)
                raise

    def claim_tasks(
        self, target: str, limit: int, lease_seconds: float, strict_order: bool, claimant: str
    ) -> list[TaskRecord]:
        """Mark up to ``limit`` due tasks of ``target`` as running, for ``lease_seconds``.

        With ``strict_order`` only the oldest unfinished task may run, and only when it is due
        (and, for a GET notification, fetched): a failing event holds back the ones after it,
        so the sink sees them in order. A claim
        that lapses (the process died) makes the task due again.
        """
        now = time.time()
        unfinished = "target = ? AND state IN ('pending', 'failed', 'running')"
        # A sink waits for the API fetch of a GET notification, so it can hand on the object.
        waiting = (
            "EXISTS (SELECT 1 FROM tasks f WHERE f.event_id = tasks.event_id "
            "AND f.target = '@fetch' AND f.id != tasks.id AND f.state NOT IN ('done', 'dead'))"
        )
        if strict_order:  # the leading run of due tasks, stopping at the first one not ready
            sql = (
                f"SELECT id, next_attempt_at, {waiting} FROM tasks WHERE {unfinished} "
                "ORDER BY id LIMIT ?"
            )
            params: tuple[Any, ...] = (target, limit)
        else:
            sql = (
                f"SELECT id, 0, 0 FROM tasks WHERE {unfinished} AND NOT {waiting} "
                "AND next_attempt_at <= ? ORDER BY id LIMIT ?"
            )
            params = (target, now, limit)

        def due_ids(connection: sqlite3.Connection) -> list[int]:
            ids = []
            for task_id, due, waits_for_fetch in connection.execute(sql, params).fetchall():
                if due > now or waits_for_fetch:
                    break
                ids.append(task_id)
            return ids

        # Look first without the write lock: an idle worker polls often, and taking the lock
        # for nothing would make the event writer wait for it.
        with self.reading() as connection:
            if not due_ids(connection):
                return []
        with self.writing() as connection:
            ids = due_ids(connection)
            if not ids:
                return []
            marks = ",".join("?" * len(ids))
            connection.execute(
                f"UPDATE tasks SET state = 'running', next_attempt_at = ?, claimed_by = ?, "
                f"updated_at = ? WHERE id IN ({marks})",
                (now + lease_seconds, claimant, utc_now(), *ids),
            )
            rows = connection.execute(
                f"SELECT {TASK_COLUMNS} FROM tasks WHERE id IN ({marks}) ORDER BY id", ids
            )
            return [TaskRecord(*row) for row in rows]

    def targets(self) -> list[str]:
        """Every target (sink name or ``@fetch``) that has deliveries, sorted."""
        with self.reading() as connection:
            sql = "SELECT DISTINCT target FROM tasks ORDER BY target"
            return [str(row[0]) for row in connection.execute(sql)]

    def claimants(self) -> list[str]:
        """Who holds running tasks right now."""
        with self.reading() as connection:
            sql = "SELECT DISTINCT claimed_by FROM tasks WHERE state = 'running'"
            return [row[0] for row in connection.execute(sql) if row[0]]

    def release_claims(self, claimant: str) -> int:
        """Make the running tasks of a worker that died due again at once."""
        with self.writing() as connection:
            return connection.execute(
                "UPDATE tasks SET state = 'pending', next_attempt_at = ?, updated_at = ? "
                "WHERE state = 'running' AND claimed_by = ?",
                (time.time(), utc_now(), claimant),
            ).rowcount

    def finish_tasks(self, outcomes: Sequence[Outcome], released: Sequence[int] = ()) -> None:
        """Record attempts (done, failed until ``next_attempt_at``, or dead) and give back
        claimed tasks that were not attempted, in one transaction."""
        now = utc_now()
        with self.writing() as connection:
            connection.executemany(
                "UPDATE tasks SET state = ?, attempts = attempts + 1, last_error = ?, output = ?, "
                "next_attempt_at = ?, claimed_by = NULL, updated_at = ? WHERE id = ?",
                [(o.state, o.error, o.output, o.next_attempt_at, now, o.task.id) for o in outcomes],
            )
            connection.executemany(
                "UPDATE tasks SET state = 'pending', next_attempt_at = ?, claimed_by = NULL, "
                "updated_at = ? WHERE id = ?",
                [(time.time(), now, task_id) for task_id in released],
            )

    def attach_fetched(self, event_id: int, fetched: bytes, changed_lines: list[str]) -> None:
        """Attach the object fetched for a GET notification, with its changed lines."""
        with self.writing() as connection:
            connection.execute(
                "UPDATE events SET fetched = ?, fetched_changed_lines = ?, fetched_at = ? "
                "WHERE id = ?",
                (fetched, orjson.dumps(changed_lines).decode(), utc_now(), event_id),
            )

    def previous_fetched(self, resource_id: str, before_event_id: int) -> bytes | None:
        """The newest object fetched for ``resource_id`` by an earlier event."""
        with self.reading() as connection:
            row = connection.execute(PREVIOUS_FETCHED, (resource_id, before_event_id)).fetchone()
        return bytes(row[0]) if row else None

    def requeue_tasks(
        self, event_id: int | None = None, target: str | None = None, dead_only: bool = False
    ) -> int:
        """Make tasks due now with a fresh attempt count: all of one event's, or the dead ones."""
        sql, params = requeue_query(SQLITE, event_id, target, dead_only)
        with self.writing() as connection:
            return connection.execute(sql, (time.time(), utc_now(), *params)).rowcount

    def status(self) -> dict[str, Any]:
        """Counts per kind and per task state, the oldest unfinished task's age, and per target
        its oldest unfinished task (the one holding back a ``concurrency: 1`` sink)."""
        with self.reading() as connection:
            return status_report(
                connection.execute(STATUS_KINDS).fetchall(),
                connection.execute(STATUS_TASKS).fetchall(),
                connection.execute(STATUS_OLDEST).fetchone()[0],
                connection.execute(STATUS_HEADS).fetchall(),
            )

    def purge(self, before: str, force: bool = False) -> int:
        """Delete events received before ``before`` whose tasks are all done (any, with force)."""
        unfinished = "SELECT 1 FROM tasks t WHERE t.event_id = events.id AND t.state != 'done'"
        sql = "DELETE FROM events WHERE received_at < ?"
        if not force:
            sql += f" AND NOT EXISTS ({unfinished})"
        with self.writing() as connection:
            return connection.execute(sql, (before,)).rowcount

    def iter_events(self, since: str | None = None, batch: int = 500) -> Iterator[StoredEvent]:
        """Every event received at or after ``since``, oldest first, read in batches."""
        last_id = 0
        while True:
            with self.reading() as connection:
                rows = connection.execute(
                    f"SELECT {EVENT_COLUMNS} FROM events WHERE id > ? AND received_at >= ? "
                    "ORDER BY id LIMIT ?",
                    (last_id, since or "", batch),
                ).fetchall()
                events = [self._event(connection, row) for row in rows]
            if not events:
                return
            yield from events
            last_id = events[-1].id

    # ---------------------------------------------------------------------------------------
    # Reconcile: what is known per object, recovered events, cursors, runs and leases.
    # Blocking calls (reconcile runs them in a thread); plain SQL, one statement per question.

    def known_objects(
        self, change_kinds: Sequence[str], fetch_kind: str, resource_ids: Sequence[str]
    ) -> dict[str, KnownObject]:
        """For each id: its newest event of ``change_kinds`` that carries a change key, and the
        newest object fetched for a GET notification of ``fetch_kind``."""
        marks = ",".join("?" * len(change_kinds))
        newest_change = (
            "SELECT change_key, kind, body, body_encoding FROM events WHERE resource_id = ? "
            f"AND change_key IS NOT NULL AND kind IN ({marks}) ORDER BY change_key DESC LIMIT 1"
        )
        # Events stored before migration 0005 have no change key: their bodies tell.
        newest_legacy = (
            "SELECT body, body_encoding FROM events WHERE resource_id = ? "
            f"AND change_key IS NULL AND kind IN ({marks}) ORDER BY id DESC LIMIT 1"
        )
        newest_fetched = (
            "SELECT fetched FROM events WHERE resource_id = ? AND kind = ? "
            "AND fetched IS NOT NULL ORDER BY id DESC LIMIT 1"
        )
        known: dict[str, KnownObject] = {}
        with self.reading() as connection:
            for resource_id in resource_ids:
                change = connection.execute(newest_change, (resource_id, *change_kinds)).fetchone()
                legacy = connection.execute(newest_legacy, (resource_id, *change_kinds)).fetchone()
                fetched = connection.execute(newest_fetched, (resource_id, fetch_kind)).fetchone()
                known[resource_id] = KnownObject(
                    resource_id,
                    change[0] if change else None,
                    change[1] if change else None,
                    decode_body(change[2], change[3]) if change else None,
                    decode_body(legacy[0], legacy[1]) if legacy else None,
                    bytes(fetched[0]) if fetched else None,
                )
        return known

    def append_recovered(self, events: Sequence[NewEvent]) -> list[AppendResult]:
        """Store recovered events (with their tasks) in one transaction. One whose change is
        already stored, by a webhook or an earlier run, is a duplicate of that event."""
        results = []
        with self.writing() as connection:
            for event in events:
                existing = connection.execute(
                    "SELECT id FROM events WHERE resource_id = ? AND change_key = ? "
                    "ORDER BY id LIMIT 1",
                    (event.resource_id, event.change_key),
                ).fetchone()
                if existing is not None:
                    results.append(AppendResult(existing[0], duplicate=True))
                else:
                    results.append(self._insert(connection, event))
        return results

    def reconcile_cursor(self, endpoint: str) -> str | None:
        """The lastUpdatedAt Tradecloud returned for ``endpoint``, exactly as received."""
        with self.reading() as connection:
            row = connection.execute(GET_CURSOR, (endpoint,)).fetchone()
        return row[0] if row else None

    def set_reconcile_cursor(self, endpoint: str, last_updated_at: str) -> None:
        with self.writing() as connection:
            connection.execute(SET_CURSOR, (endpoint, last_updated_at, utc_now()))

    def record_reconcile_run(self, result: dict[str, Any], keep: int = 100) -> None:
        """Keep a run's result (JSON); only the newest ``keep`` runs are kept."""
        with self.writing() as connection:
            connection.execute(RECORD_RUN, (utc_now(), orjson.dumps(result).decode()))
            connection.execute(TRIM_RUNS, (keep,))

    def last_reconcile_run(self) -> dict[str, Any] | None:
        with self.reading() as connection:
            row = connection.execute(LAST_RUN).fetchone()
        return orjson.loads(row[0]) if row else None

    def acquire_lease(self, name: str, holder: str, expires_at: float) -> bool:
        """Take the lease ``name`` until ``expires_at`` (unix time) if it is free, lapsed or
        already ours; False when another holder has it."""
        with self.writing() as connection:
            connection.execute(TAKE_LEASE, (name, holder, expires_at, time.time()))
            row = connection.execute("SELECT holder FROM leases WHERE name = ?", (name,)).fetchone()
        return bool(row and row[0] == holder)

    def release_lease(self, name: str, holder: str, keep_until: float | None = None) -> None:
        """Give the lease back, or keep it until ``keep_until`` so others wait till then."""
        with self.writing() as connection:
            if keep_until is None:
                connection.execute(DROP_LEASE, (name, holder))
            else:
                connection.execute(KEEP_LEASE, (keep_until, name, holder))

    # ---------------------------------------------------------------------------------------
    # Reading (any thread; short-lived connections so readers never block the writer)

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        try:
            connection = self._connect()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open the event store {self.path}: {exc}") from None
        try:
            yield connection
        except sqlite3.DatabaseError as exc:  # locked, disk full, corrupt ("malformed"), ...
            raise StoreUnavailable(f"the event store {self.path} failed: {exc}") from None
        finally:
            connection.close()

    def count(self) -> int:
        with self.reading() as connection:
            return int(connection.execute("SELECT count(*) FROM events").fetchone()[0])

    def list_events(
        self,
        limit: int = 50,
        kind: str | None = None,
        event_name: str | None = None,
        task_state: str | None = None,
    ) -> list[StoredEvent]:
        """Newest first. ``event_name`` may be a glob (``Order*``)."""
        where, params = list_filters(SQLITE, kind, event_name, task_state)
        sql = f"SELECT {EVENT_COLUMNS} FROM events {where} ORDER BY id DESC LIMIT ?"
        with self.reading() as connection:
            rows = connection.execute(sql, [*params, limit]).fetchall()
            return [self._event(connection, row) for row in rows]

    def get_event(self, event_id: int) -> StoredEvent:
        if not 0 < event_id < 2**63:  # SQLite's integers; beyond them no id can exist
            raise NotFound(f"no event with id {event_id} in {self.path}")
        with self.reading() as connection:
            row = connection.execute(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE id = ?", (event_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"no event with id {event_id} in {self.path}")
            return self._event(connection, row)

    # ---------------------------------------------------------------------------------------
    # Browsing (the inspector). Every query here is keyset-paged on an index (migration 0006),
    # so a page costs the same with a million stored events as with ten. Another backend
    # implements these same four methods.

    def latest_event_id(self) -> int:
        """The id of the newest event (0 when none): cheap enough to poll for live views."""
        with self.reading() as connection:
            return int(connection.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0])

    def page_events(self, query: EventQuery) -> list[StoredEvent]:
        """One page of events matching ``query``, newest first."""
        sql, params = page_ids_query(SQLITE, query)
        with self.reading() as connection:
            ids = [row[0] for row in connection.execute(sql, params)]
            if not ids:
                return []
            marks = ",".join("?" * len(ids))
            rows = connection.execute(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE id IN ({marks}) ORDER BY id DESC", ids
            ).fetchall()
            return [self._event(connection, row) for row in rows]

    def resource_events(self, resource_id: str, limit: int = 500) -> list[StoredEvent]:
        """The events of one order or shipment (by Tradecloud id), oldest first."""
        with self.reading() as connection:
            rows = connection.execute(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE resource_id = ? ORDER BY id LIMIT ?",
                (resource_id, limit),
            ).fetchall()
            return [self._event(connection, row) for row in rows]

    def previous_event(self, resource_id: str, before_event_id: int) -> StoredEvent | None:
        """The newest event of the same order or shipment received before this one."""
        with self.reading() as connection:
            row = connection.execute(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE resource_id = ? AND id < ? "
                "ORDER BY id DESC LIMIT 1",
                (resource_id, before_event_id),
            ).fetchone()
            return self._event(connection, row) if row is not None else None

    def _event(self, connection: sqlite3.Connection, row: tuple[Any, ...]) -> StoredEvent:
        tasks = [
            TaskRecord(*task)
            for task in connection.execute(
                f"SELECT {TASK_COLUMNS} FROM tasks WHERE event_id = ? ORDER BY id", (row[0],)
            )
        ]
        return stored_event(row, tasks)


class _Checkpointer:
    """Copies committed pages from the WAL into the database on its own thread and connection.

    SQLite's automatic checkpoint runs inside the COMMIT that crosses the threshold, so the
    requests of that batch wait for the database file to be written and fsynced. A passive
    checkpoint on another connection does the same work beside the writer; commits stay
    durable in the WAL either way.
    """

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self._wanted = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(
            target=self._run, name="tcwebhook-store-checkpointer", daemon=True
        )
        self._thread.start()

    def wake(self) -> None:
        self._wanted.set()

    def stop(self) -> None:
        self._stopping = True
        self._wanted.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            connection = self._store._connect()
        except sqlite3.Error:
            return  # the writer's own automatic checkpoint still keeps the WAL bounded
        try:
            while True:
                self._wanted.wait()
                if self._stopping:
                    return
                self._wanted.clear()
                with contextlib.suppress(sqlite3.Error):
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            connection.close()


def _rollback(connection: sqlite3.Connection) -> None:
    """Roll back if SQLite has not already done so itself (it has, after "disk is full"):
    a failing ROLLBACK must not hide the real cause."""
    if connection.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            connection.execute("ROLLBACK")


def _wake_all(batch: list[Any], outcomes: Sequence[AppendResult | BaseException]) -> None:
    """Hand each request its outcome with one wake-up per event loop, not one per request:
    every ``call_soon_threadsafe`` writes to the loop's self-pipe and wakes it."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[AppendResult], Any]]] = {}
    for (_, future, loop), outcome in zip(batch, outcomes, strict=True):
        by_loop.setdefault(loop, []).append((future, outcome))
    for loop, settled in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits for these
            loop.call_soon_threadsafe(_settle, settled)


def _settle(settled: list[tuple[asyncio.Future[AppendResult], Any]]) -> None:
    for future, outcome in settled:
        if future.done():  # the request went away (client disconnected); the row is stored
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
