"""The write path: one writer thread, group commit, and the checkpointer beside it.

One writer thread owns the write connection. Requests queue their rows; the writer takes every
row waiting, inserts them in one transaction and commits once (one fsync for the batch), then
wakes each request. A request is answered only after its own commit, so every 2xx still means
"on disk", while many concurrent requests share the cost of one fsync.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tcwebhook.errors import StoreUnavailable
from tcwebhook.store.common import INSERT_COLUMNS, MAX_BATCH, CommitHealth, event_row, wake_all
from tcwebhook.store.records import AppendResult, NewEvent
from tcwebhook.store.sqlite.connection import rollback

# The writer checkpoints itself only if the checkpointer thread falls this far behind (pages).
WRITER_AUTOCHECKPOINT = 16384
# Wake the checkpointer after about this much has been committed (SQLite's default automatic
# checkpoint is 1000 pages): checkpointing after every small commit costs more fsyncs.
CHECKPOINT_EVERY_BYTES = 4 * 1024 * 1024
_STOP = object()

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


class GroupCommitWriter:
    """Commits the queued events of many requests in one transaction per batch, on one thread.

    Producers put ``(event, future, loop)`` on ``queue``; each future is settled on its own
    loop once the batch holding it is committed (or failed: ``StoreUnavailable``).
    """

    def __init__(self, connect: Callable[[], sqlite3.Connection], health: CommitHealth) -> None:
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        # Called in the writer thread after each commit with (events, seconds): metrics.
        self.commit_observer: Callable[[int, float], None] | None = None
        self._connect = connect
        self._health = health
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._writers_lock: int | None = None  # file descriptor, see take_turns

    def start(self) -> None:
        """Start the writer thread unless it runs already (any thread may ask)."""
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._write_loop, name="tcwebhook-store-writer", daemon=True
                    )
                    self._thread.start()

    def take_turns(self, lock_path: Path) -> None:
        """Several processes write this database at once (``serve --workers``): take turns.

        SQLite's busy handler sleeps 1, 2, 5, 10 ms ... before retrying a taken write lock,
        far longer than one group commit takes; a blocking file lock wakes the next writer
        the moment the previous one commits.
        """
        if self._writers_lock is None:
            self._writers_lock = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)

    def close(self) -> None:
        """Let the writer finish what is queued, then stop it."""
        if self._thread is not None:
            self.queue.put(_STOP)
            self._thread.join()
            self._thread = None
        if self._writers_lock is not None:
            os.close(self._writers_lock)
            self._writers_lock = None

    def _write_loop(self) -> None:
        connection = self._connect()
        connection.execute(f"PRAGMA wal_autocheckpoint={WRITER_AUTOCHECKPOINT}")
        checkpointer = Checkpointer(self._connect)
        unchecked = 0  # bytes committed since the checkpointer was last woken (roughly)
        try:
            while True:
                batch = [self.queue.get()]
                while len(batch) < MAX_BATCH:
                    try:
                        batch.append(self.queue.get_nowait())
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
                    results = insert_events(connection, [event for event, _, _ in batch])
                    connection.execute("COMMIT")
                except BaseException:
                    rollback(connection)
                    raise
            finally:
                if lock is not None:
                    fcntl.flock(lock, fcntl.LOCK_UN)
        except Exception as exc:  # every failure to store must reach the request as a 503
            self._health.failed(str(exc))
            error = StoreUnavailable(f"the event store could not commit: {exc}")
            wake_all(batch, [error] * len(batch))
            return
        if self.commit_observer is not None:
            self.commit_observer(len(batch), time.perf_counter() - started)
        self._health.committed()
        wake_all(batch, results)


def insert_events(connection: sqlite3.Connection, events: Sequence[NewEvent]) -> list[AppendResult]:
    """Insert events (skipping duplicates) and their tasks inside the caller's transaction.

    One ``executemany`` for the whole batch keeps the per-row Python work small
    (docs/performance-notes.md#7-one-executemany-per-batch). The caller holds the write lock,
    so the rows numbered above the previous maximum are exactly the ones inserted here, in
    order; an event whose key is not among them was a duplicate.
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


class Checkpointer:
    """Copies committed pages from the WAL into the database on its own thread and connection.

    SQLite's automatic checkpoint runs inside the COMMIT that crosses the threshold, so the
    requests of that batch wait for the database file to be written and fsynced. A passive
    checkpoint on another connection does the same work beside the writer; commits stay
    durable in the WAL either way
    (docs/performance-notes.md#10-the-checkpoint-beside-the-writer).
    """

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
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
            connection = self._connect()
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
