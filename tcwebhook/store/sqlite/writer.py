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

from tcwebhook.errors import StoreUnavailable
from tcwebhook.store.records import AppendResult, NewEvent
from tcwebhook.store.rows import INSERT_COLUMNS, event_row
from tcwebhook.store.sql import INSERT_TASK
from tcwebhook.store.sqlite.connection import rollback

# The writer checkpoints itself only if the checkpointer thread falls this far behind (pages).
WRITER_AUTOCHECKPOINT = 16384
# Wake the checkpointer after about this much has been committed (SQLite's default automatic
# checkpoint is 1000 pages): checkpointing after every small commit costs more fsyncs.
CHECKPOINT_EVERY_BYTES = 4 * 1024 * 1024

# A plain INSERT: the form ``INSERT … SELECT … WHERE NOT EXISTS (SELECT … FROM events)`` makes
# SQLite stage every row in a temporary table first, because the SELECT reads the table being
# written (docs/performance-notes.md#14-duplicates-found-before-the-insert).
_INSERT_EVENT = (
    f"INSERT INTO events ({INSERT_COLUMNS}) "
    f"VALUES ({', '.join('?' * len(INSERT_COLUMNS.split(',')))}) "
    "ON CONFLICT (dedup_key) DO NOTHING"
)
# SQLite's default limit of parameters per statement was 999 before 3.32.
_KEYS_PER_QUERY = 900
# The largest id SQLite gives by counting up; beyond it, it picks unused ids at random.
MAX_ID = 2**63 - 1


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

    A duplicate is an event whose dedup key is stored already, or whose change key is the
    dedup key of a stored event: a webhook whose change reconcile has already stored as a
    recovered event is the same change, stored once, whoever came first. The caller holds the
    write lock, so one query for the batch's keys tells the duplicates before anything is
    inserted, and the new rows take the ids above the previous maximum, in order. One
    ``executemany`` for them keeps the per-row Python work small
    (docs/performance-notes.md#7-one-executemany-per-batch).
    """
    stored = _stored_keys(connection, events)
    batch: dict[str, int] = {}  # dedup key → position in ``new`` of this batch's new events
    new: list[NewEvent] = []
    first_of: list[int | str] = []  # per event: its position in ``new``, or its original's key
    for event in events:
        key = _original_key(event, stored, batch)
        if key is not None:
            first_of.append(key)
            continue
        if event.dedup_key is not None:
            batch[event.dedup_key] = len(new)
        first_of.append(len(new))
        new.append(event)
    ids = _insert_new(connection, new)
    results: list[AppendResult] = []
    tasks: list[tuple[int, str, float, str]] = []
    now = time.time()
    for event, first in zip(events, first_of, strict=True):
        if isinstance(first, str):  # a duplicate, of a stored event or of one just inserted
            first_id = stored[first] if first in stored else ids[batch[first]]
            results.append(AppendResult(first_id, duplicate=True))
        else:
            results.append(AppendResult(ids[first], duplicate=False))
            tasks.extend((ids[first], target, now, event.received_at) for target in event.tasks)
    if tasks:
        connection.executemany(INSERT_TASK, tasks)
    return results


def _stored_keys(connection: sqlite3.Connection, events: Sequence[NewEvent]) -> dict[str, int]:
    """The stored events (dedup key → id) that the batch's dedup and change keys name."""
    keys = list({key for e in events for key in (e.dedup_key, e.change_key) if key is not None})
    found: dict[str, int] = {}
    for start in range(0, len(keys), _KEYS_PER_QUERY):
        chunk = keys[start : start + _KEYS_PER_QUERY]
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT dedup_key, id FROM events WHERE dedup_key IN ({marks})"
        found.update(connection.execute(sql, chunk).fetchall())
    return found


def _original_key(event: NewEvent, stored: dict[str, int], batch: dict[str, int]) -> str | None:
    """The dedup key of the event ``event`` duplicates (stored, or new earlier in this batch),
    its own key first; None for a new event."""
    for key in (event.dedup_key, event.change_key):
        if key is not None and (key in stored or key in batch):
            return key
    return None


def _insert_new(connection: sqlite3.Connection, new: list[NewEvent]) -> list[int]:
    """Insert events known to be new; their ids, in order."""
    if not new:
        return []
    before = connection.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
    if before + len(new) >= MAX_ID:
        raise StoreUnavailable("the event store has used up its event ids")
    cursor = connection.executemany(_INSERT_EVENT, map(event_row, new))
    if cursor.rowcount != len(new):  # none can conflict: the caller holds the write lock
        raise StoreUnavailable(
            f"the event store took {cursor.rowcount} of {len(new)} new events; none was kept"
        )
    # Without AUTOINCREMENT, SQLite numbers a new row one above the largest id.
    return list(range(before + 1, before + 1 + len(new)))


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
