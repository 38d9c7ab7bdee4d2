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
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import zstandard

from tcwebhook.errors import NotFound, StoreUnavailable
from tcwebhook.store.base import Store
from tcwebhook.store.migrations import migrate
from tcwebhook.store.records import AppendResult, NewEvent, Outcome, StoredEvent, TaskRecord

MAX_BATCH = 512
# The writer checkpoints itself only if the checkpointer thread falls this far behind (pages).
WRITER_AUTOCHECKPOINT = 16384
# Wake the checkpointer after about this much has been committed (SQLite's default automatic
# checkpoint is 1000 pages): checkpointing after every small commit costs more fsyncs.
CHECKPOINT_EVERY_BYTES = 4 * 1024 * 1024
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
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedup_key) DO NOTHING"
)
_INSERT_TASK = (
    "INSERT INTO tasks (event_id, target, state, next_attempt_at, updated_at) "
    "VALUES (?, ?, 'pending', ?, ?)"
)


# Bodies at least this large are stored zstd-compressed. Writing them is the store's main cost
# for large events (every page goes to the WAL, and again to the database at checkpoint); an
# order with many lines shrinks many times over, and zstd at level 1 takes ~15 us for 50 KB.
COMPRESS_FROM = 16 * 1024
ZSTD = "zstd"
_codecs = threading.local()  # zstandard's (de)compressor objects are not thread-safe


def encode_body(body: bytes) -> tuple[bytes, str | None]:
    """The bytes to store for ``body`` and their encoding (None: stored as they are)."""
    if len(body) < COMPRESS_FROM:
        return body, None
    compressor = getattr(_codecs, "compressor", None)
    if compressor is None:
        compressor = _codecs.compressor = zstandard.ZstdCompressor(level=1)
    packed = compressor.compress(body)
    if len(packed) >= len(body):
        return body, None
    return packed, ZSTD


def decode_body(stored: bytes, encoding: str | None) -> bytes:
    """The original bytes of a body stored by ``encode_body``."""
    if encoding is None:
        return bytes(stored)
    if encoding == ZSTD:
        decompressor = getattr(_codecs, "decompressor", None)
        if decompressor is None:
            decompressor = _codecs.decompressor = zstandard.ZstdDecompressor()
        return decompressor.decompress(stored)
    raise StoreUnavailable(
        f"the event store holds a body encoded as {encoding!r}, unknown to this version; "
        "upgrade tcwebhook"
    )


def _event_row(event: NewEvent) -> tuple[Any, ...]:
    body, encoding = encode_body(event.body)
    return (
        event.received_at,
        event.kind,
        event.event_name,
        event.message_id,
        event.dedup_key,
        event.resource_id,
        event.number,
        orjson.dumps(event.changed_lines).decode(),
        event.method,
        event.path,
        orjson.dumps(event.headers).decode(),
        body,
        encoding,
    )


# (second, "YYYY-MM-DDTHH:MM:SS") of the last call, replaced as one tuple so threads never see a
# torn pair. utc_now runs for every request on the event loop; formatting a datetime each time
# cost about three times as much as reusing the second's prefix.
_SECOND_PREFIX: tuple[int, str] = (-1, "")


def utc_now() -> str:
    """The current UTC time, ISO 8601 with milliseconds and a Z (2026-11-27T21:47:32.159Z)."""
    global _SECOND_PREFIX
    ns = time.time_ns()
    second, prefix = _SECOND_PREFIX
    if ns // 1_000_000_000 != second:
        second = ns // 1_000_000_000
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _SECOND_PREFIX = (second, prefix)
    return f"{prefix}.{ns // 1_000_000 % 1000:03d}Z"


class SqliteStore(Store):
    """Durable event store in one SQLite file."""

    def __init__(self, path: Path, busy_timeout: float = 2.0) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as connection:
                connection.execute("PRAGMA journal_mode=WAL")
                migrate(connection)
            connection.close()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open the event store {path}: {exc}") from None
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot create the event store {path}: {exc.strerror}; "
                "check the data_dir / store.url setting and its permissions"
            ) from None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._lock = threading.Lock()
        self._writers_lock: int | None = None  # file descriptor, see coordinate_writers

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
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
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
        try:
            if lock is not None:
                fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                connection.execute("BEGIN IMMEDIATE")
                try:
                    results = self._insert_many(connection, [event for event, _, _ in batch])
                    connection.execute("COMMIT")
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
            finally:
                if lock is not None:
                    fcntl.flock(lock, fcntl.LOCK_UN)
        except Exception as exc:  # every failure to store must reach the request as a 503
            error = StoreUnavailable(f"the event store could not commit: {exc}")
            _wake_all(batch, [error] * len(batch))
            return
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
        connection.executemany(_INSERT_EVENT, map(_event_row, events))
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
                    "SELECT id FROM events WHERE dedup_key = ?", (event.dedup_key,)
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
    # Tasks (the outbox). Blocking calls: the delivery worker runs them in a thread.

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """A short write transaction on its own connection."""
        with self.reading() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def claim_tasks(
        self, target: str, limit: int, lease_seconds: float, strict_order: bool, claimant: str
    ) -> list[TaskRecord]:
        """Mark up to ``limit`` due tasks of ``target`` as running, for ``lease_seconds``.

        With ``strict_order`` only the oldest unfinished task may run, and only when it is due:
        a failing event holds back the ones after it, so the sink sees them in order. A claim
        that lapses (the process died) makes the task due again.
        """
        now = time.time()
        # A sink waits for the API fetch of a GET notification, so it can hand on the object.
        unfinished = (
            "target = ? AND state IN ('pending', 'failed', 'running') AND NOT EXISTS ("
            "SELECT 1 FROM tasks f WHERE f.event_id = tasks.event_id AND f.target = '@fetch' "
            "AND f.id != tasks.id AND f.state NOT IN ('done', 'dead'))"
        )
        if strict_order:  # the leading run of due tasks, stopping at the first one not due
            sql = f"SELECT id, next_attempt_at FROM tasks WHERE {unfinished} ORDER BY id LIMIT ?"
            params: tuple[Any, ...] = (target, limit)
        else:
            sql = (
                f"SELECT id, 0 FROM tasks WHERE {unfinished} AND next_attempt_at <= ? "
                "ORDER BY id LIMIT ?"
            )
            params = (target, now, limit)

        def due_ids(connection: sqlite3.Connection) -> list[int]:
            ids = []
            for task_id, due in connection.execute(sql, params).fetchall():
                if due > now:
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
                f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id IN ({marks}) ORDER BY id", ids
            )
            return [TaskRecord(*row) for row in rows]

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
            row = connection.execute(
                "SELECT fetched FROM events WHERE resource_id = ? AND id < ? "
                "AND fetched IS NOT NULL ORDER BY id DESC LIMIT 1",
                (resource_id, before_event_id),
            ).fetchone()
        return bytes(row[0]) if row else None

    def requeue_tasks(
        self, event_id: int | None = None, target: str | None = None, dead_only: bool = False
    ) -> int:
        """Make tasks due now with a fresh attempt count: all of one event's, or the dead ones."""
        where = ["state != 'running'"]
        params: list[Any] = []
        if event_id is not None:
            where.append("event_id = ?")
            params.append(event_id)
        if dead_only:
            where.append("state = 'dead'")
        if target is not None:
            where.append("target = ?")
            params.append(target)
        with self.writing() as connection:
            cursor = connection.execute(
                "UPDATE tasks SET state = 'pending', attempts = 0, next_attempt_at = ?, "
                f"updated_at = ? WHERE {' AND '.join(where)}",
                (time.time(), utc_now(), *params),
            )
            return cursor.rowcount

    def status(self) -> dict[str, Any]:
        """Counts per kind and per task state, and the age of the oldest unfinished task."""
        with self.reading() as connection:
            kinds = dict(connection.execute("SELECT kind, count(*) FROM events GROUP BY kind"))
            tasks: dict[str, dict[str, int]] = {}
            for target, state, count in connection.execute(
                "SELECT target, state, count(*) FROM tasks GROUP BY target, state"
            ):
                tasks.setdefault(target, {})[state] = count
            oldest = connection.execute(
                "SELECT min(e.received_at) FROM tasks t JOIN events e ON e.id = t.event_id "
                "WHERE t.state IN ('pending', 'failed', 'running')"
            ).fetchone()[0]
        return {"events": kinds, "tasks": tasks, "oldest_unfinished_received_at": oldest}

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
                    f"SELECT {_EVENT_COLUMNS} FROM events WHERE id > ? AND received_at >= ? "
                    "ORDER BY id LIMIT ?",
                    (last_id, since or "", batch),
                ).fetchall()
                events = [self._event(connection, row) for row in rows]
            if not events:
                return
            yield from events
            last_id = events[-1].id

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
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"cannot read the event store {self.path}: {exc}") from None
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
        where: list[str] = []
        params: list[Any] = []
        if task_state:
            where.append(
                "EXISTS (SELECT 1 FROM tasks t WHERE t.event_id = events.id AND t.state = ?)"
            )
            params.append(task_state)
        if kind:
            where.append("kind = ?")
            params.append(kind)
        if event_name:
            where.append("event_name GLOB ?")
            params.append(event_name)
        sql = f"SELECT {_EVENT_COLUMNS} FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        with self.reading() as connection:
            rows = connection.execute(sql, [*params, limit]).fetchall()
            return [self._event(connection, row) for row in rows]

    def get_event(self, event_id: int) -> StoredEvent:
        with self.reading() as connection:
            row = connection.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE id = ?", (event_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"no event with id {event_id} in {self.path}")
            return self._event(connection, row)

    def _event(self, connection: sqlite3.Connection, row: tuple[Any, ...]) -> StoredEvent:
        tasks = [
            TaskRecord(*task)
            for task in connection.execute(
                f"SELECT {_TASK_COLUMNS} FROM tasks WHERE event_id = ? ORDER BY id", (row[0],)
            )
        ]
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
