"""The write path on SQLite: SQLite's side of the group commit (``store/commits.py``), the
insert every write of events goes through, and the checkpointer beside the writer.

The writer thread owns the write connection: each batch of requests is inserted in one
transaction and committed once (one fsync for the batch).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tcwebhook.store.records import AppendResult, NewEvent
from tcwebhook.store.rows import INSERT_COLUMNS, event_row
from tcwebhook.store.sql import INSERT_TASK
from tcwebhook.store.sqlite.connection import rollback

# The writer checkpoints itself only if the checkpointer thread falls this far behind (pages).
WRITER_AUTOCHECKPOINT = 16384
# Wake the checkpointer after about this much has been committed (SQLite's default automatic
# checkpoint is 1000 pages): checkpointing after every small commit costs more fsyncs.
CHECKPOINT_EVERY_BYTES = 4 * 1024 * 1024

# A webhook whose change reconcile has already stored as a recovered event (whose dedup_key is
# that change key) is a duplicate too: the same change is stored once, whoever came first.
_INSERT_EVENT = (
    f"INSERT INTO events ({INSERT_COLUMNS}) "
    "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?14 "
    "WHERE ?14 IS NULL OR NOT EXISTS (SELECT 1 FROM events WHERE dedup_key = ?14) "
    "ON CONFLICT (dedup_key) DO NOTHING"
)


class SqliteCommitter:
    """SQLite's side of the group commit (``GroupCommitLoop``): the write connection, the
    checkpointer beside it, and the file lock that ``serve --workers`` takes turns with."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._connection: sqlite3.Connection | None = None  # opened by the first commit
        self._checkpointer: Checkpointer | None = None
        self._unchecked = 0  # bytes committed since the checkpointer was last woken (roughly)
        self._writers_lock: int | None = None  # file descriptor, see take_turns

    def take_turns(self, lock_path: Path) -> None:
        """Several processes write this database at once (``serve --workers``): take turns.

        SQLite's busy handler sleeps 1, 2, 5, 10 ms ... before retrying a taken write lock,
        far longer than one group commit takes; a blocking file lock wakes the next writer
        the moment the previous one commits.
        """
        if self._writers_lock is None:
            self._writers_lock = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)

    def stop_taking_turns(self) -> None:
        if self._writers_lock is not None:
            os.close(self._writers_lock)
            self._writers_lock = None

    def commit(self, events: list[NewEvent]) -> list[AppendResult]:
        connection = self._connection or self._open()
        lock = self._writers_lock
        if lock is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                results = insert_events(connection, events)
                connection.execute("COMMIT")
            except BaseException:
                rollback(connection)
                raise
        finally:
            if lock is not None:
                fcntl.flock(lock, fcntl.LOCK_UN)
        self._unchecked += sum(len(event.body) + 512 for event in events)
        if self._unchecked >= CHECKPOINT_EVERY_BYTES and self._checkpointer is not None:
            self._checkpointer.wake()
            self._unchecked = 0
        return results

    def _open(self) -> sqlite3.Connection:
        connection = self._connect()
        try:
            connection.execute(f"PRAGMA wal_autocheckpoint={WRITER_AUTOCHECKPOINT}")
        except BaseException:
            connection.close()
            raise
        self._checkpointer = Checkpointer(self._connect)
        self._connection = connection
        return connection

    def finish(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self._unchecked = 0


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
        connection.executemany(INSERT_TASK, tasks)
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
