"""Reading stored events on SQLite: counts, lists, single events, status and the inspector's
keyset-paged browsing. Any thread; each read on its own short-lived connection."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from tcwebhook.errors import NotFound
from tcwebhook.store.records import EventQuery, StoredEvent, TaskRecord
from tcwebhook.store.rows import (
    EVENT_COLUMNS,
    TASK_COLUMNS,
    status_report,
    stored_event,
    tasks_by_event,
)
from tcwebhook.store.sql import (
    COUNT_EVENTS,
    EVENT_BY_ID,
    EVENTS_SINCE,
    LATEST_EVENT_ID,
    PREVIOUS_EVENT,
    PREVIOUS_FETCHED,
    RESOURCE_EVENTS,
    SQLITE,
    STATUS_HEADS,
    STATUS_KINDS,
    STATUS_OLDEST,
    STATUS_TASKS,
    event_tasks_query,
    list_filters,
    page_ids_query,
)
from tcwebhook.store.sqlite.connection import SqliteDatabase


class SqliteQueries(SqliteDatabase):
    """Answers the read-only questions about stored events and their tasks."""

    def count(self) -> int:
        with self.reading() as connection:
            return int(connection.execute(COUNT_EVENTS).fetchone()[0])

    def list_events(
        self,
        limit: int = 50,
        kind: str | None = None,
        event_name: str | None = None,
        task_state: str | None = None,
    ) -> list[StoredEvent]:
        """Newest first. ``event_name`` may be a glob (``Order*``)."""
        where, params = list_filters(SQLITE, kind, event_name, task_state)
        with self.reading() as connection:
            return _select(connection, f"{where} ORDER BY id DESC LIMIT ?", (*params, limit))

    def get_event(self, event_id: int) -> StoredEvent:
        if not 0 < event_id < 2**63:  # SQLite's integers; beyond them no id can exist
            raise NotFound(f"no event with id {event_id} in {self.path}")
        with self.reading() as connection:
            events = _select(connection, EVENT_BY_ID, (event_id,))
        if not events:
            raise NotFound(f"no event with id {event_id} in {self.path}")
        return events[0]

    def iter_events(self, since: str | None = None, batch: int = 500) -> Iterator[StoredEvent]:
        """Every event received at or after ``since``, oldest first, read in batches."""
        last_id = 0
        while True:
            with self.reading() as connection:
                events = _select(connection, EVENTS_SINCE, (last_id, since or "", batch))
            if not events:
                return
            yield from events
            last_id = events[-1].id

    def previous_fetched(self, resource_id: str, before_event_id: int) -> bytes | None:
        """The newest object fetched for ``resource_id`` by an earlier event."""
        with self.reading() as connection:
            row = connection.execute(PREVIOUS_FETCHED, (resource_id, before_event_id)).fetchone()
        return bytes(row[0]) if row else None

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

    # ---------------------------------------------------------------------------------------
    # Browsing (the inspector). Every query here is keyset-paged on an index (migration 0006),
    # so a page costs the same with a million stored events as with ten. Another backend
    # implements these same five methods.

    def latest_event_id(self) -> int:
        """The id of the newest event (0 when none): cheap enough to poll for live views."""
        with self.reading() as connection:
            return int(connection.execute(LATEST_EVENT_ID).fetchone()[0])

    def event_tasks(self, event_ids: Sequence[int]) -> dict[int, list[TaskRecord]]:
        """The tasks of each of these events, by event id (the (event_id, target) index)."""
        if not event_ids:
            return {}
        sql, params = event_tasks_query(SQLITE, event_ids)
        with self.reading() as connection:
            return tasks_by_event(connection.execute(sql, params))

    def page_events(self, query: EventQuery) -> list[StoredEvent]:
        """One page of events matching ``query``, newest first."""
        sql, params = page_ids_query(SQLITE, query)
        with self.reading() as connection:
            ids = [row[0] for row in connection.execute(sql, params)]
            if not ids:
                return []
            marks = ",".join("?" * len(ids))
            return _select(connection, f"WHERE id IN ({marks}) ORDER BY id DESC", ids)

    def resource_events(self, resource_id: str, limit: int = 500) -> list[StoredEvent]:
        """The events of one order or shipment (by Tradecloud id), oldest first."""
        with self.reading() as connection:
            return _select(connection, RESOURCE_EVENTS, (resource_id, limit))

    def previous_event(self, resource_id: str, before_event_id: int) -> StoredEvent | None:
        """The newest event of the same order or shipment received before this one."""
        with self.reading() as connection:
            events = _select(connection, PREVIOUS_EVENT, (resource_id, before_event_id))
        return events[0] if events else None


def _select(
    connection: sqlite3.Connection, clause: str, params: Sequence[Any]
) -> list[StoredEvent]:
    """The events ``SELECT … FROM events {clause}`` finds, each with its tasks."""
    rows = connection.execute(f"SELECT {EVENT_COLUMNS} FROM events {clause}", params).fetchall()
    return [stored_event(row, _tasks(connection, row[0])) for row in rows]


def _tasks(connection: sqlite3.Connection, event_id: int) -> list[TaskRecord]:
    sql = f"SELECT {TASK_COLUMNS} FROM tasks WHERE event_id = ? ORDER BY id"
    return [TaskRecord(*task) for task in connection.execute(sql, (event_id,))]
