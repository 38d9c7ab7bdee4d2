"""The write path on PostgreSQL: its side of the group commit (``store/commits.py``) and the
insert every write of events goes through.

Commit before acknowledge, with group commit: the writer thread of each process stores every
event waiting in one transaction (``synchronous_commit=on``). A transaction advisory lock makes
the writers of all processes take turns, so event ids are also commit order: a worker that
delivers in id order never skips an event still being committed. Dedup across instances: a
unique index on the dedup key and ``INSERT … ON CONFLICT DO NOTHING``; a duplicate answers with
the id of the event stored first.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Sequence

import psycopg

from tcwebhook.errors import StoreUnavailable
from tcwebhook.store.postgres.connect import connect, unavailable
from tcwebhook.store.postgres.listen import CHANNEL, NOTIFY
from tcwebhook.store.postgres.migrations import APPEND_LOCK, LOCK_CLASS
from tcwebhook.store.records import AppendResult, NewEvent
from tcwebhook.store.rows import INSERT_COLUMNS, event_row
from tcwebhook.store.sql import INSERT_TASK, POSTGRES

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
_INSERT_TASK = POSTGRES.sql(INSERT_TASK)


class PostgresCommitter:
    """PostgreSQL's side of the group commit (``GroupCommitLoop``): one connection of its own,
    made afresh after a failure, so the writer recovers by itself when the server is back."""

    def __init__(self, info: str, url: str) -> None:
        self._conninfo = info
        self._url = url
        self._connection: psycopg.Connection | None = None

    def commit(self, events: list[NewEvent]) -> list[AppendResult]:
        try:
            if self._connection is None or self._connection.closed:
                self._connection = connect(self._conninfo, self._url)
            with self._connection.transaction():
                return insert_batch(self._connection, events)
        except Exception as exc:
            self.finish()  # the next batch connects afresh
            if isinstance(exc, StoreUnavailable):
                raise
            raise unavailable(exc, self._url, "commit") from None

    def finish(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def insert_batch(connection: psycopg.Connection, events: Sequence[NewEvent]) -> list[AppendResult]:
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
            cursor.execute(NOTIFY, (CHANNEL,))  # delivered at commit
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
