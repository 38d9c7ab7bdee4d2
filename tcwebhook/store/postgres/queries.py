"""Reading stored events on PostgreSQL: counts, lists, single events, status and the inspector's
keyset-paged browsing. Any thread; each read in a read-only transaction on a pooled connection,
the events' tasks read with one query for all of them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from tcwebhook.errors import NotFound
from tcwebhook.store.postgres.connection import PostgresDatabase
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
    POSTGRES,
    PREVIOUS_EVENT,
    PREVIOUS_FETCHED,
    RESOURCE_EVENTS,
    STATUS_HEADS,
    STATUS_KINDS,
    STATUS_OLDEST,
    STATUS_TASKS,
    event_tasks_query,
    list_filters,
    page_ids_query,
)

_EVENTS_TASKS = f"SELECT {TASK_COLUMNS} FROM tasks WHERE event_id = ANY(%s) ORDER BY id"


class PostgresQueries(PostgresDatabase):
    """Answers the read-only questions about stored events and their tasks."""

    def count(self) -> int:
        with self.reading("count events") as connection:
            row = connection.execute(COUNT_EVENTS).fetchone()
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
        in_range = 0 < event_id < 2**63  # PostgreSQL's bigint; beyond it no id can exist
        events = self._events(POSTGRES.sql(EVENT_BY_ID), (event_id,)) if in_range else []
        if not events:
            raise NotFound(f"no event with id {event_id} in {self.location}")
        return events[0]

    def iter_events(self, since: str | None = None, batch: int = 500) -> Iterator[StoredEvent]:
        last_id = 0
        while True:
            events = self._events(POSTGRES.sql(EVENTS_SINCE), (last_id, since or "", batch))
            if not events:
                return
            yield from events
            last_id = events[-1].id

    def previous_fetched(self, resource_id: str, before_event_id: int) -> bytes | None:
        with self.reading("read a fetched object") as connection:
            row = connection.execute(
                POSTGRES.sql(PREVIOUS_FETCHED), (resource_id, before_event_id)
            ).fetchone()
        return bytes(row[0]) if row else None

    def status(self) -> dict[str, Any]:
        with self.reading("read the status") as connection:
            oldest = connection.execute(STATUS_OLDEST).fetchone()
            return status_report(
                connection.execute(STATUS_KINDS).fetchall(),
                connection.execute(STATUS_TASKS).fetchall(),
                oldest[0] if oldest else None,
                connection.execute(STATUS_HEADS).fetchall(),
            )

    # ---------------------------------------------------------------------------------------
    # Browsing (the inspector): keyset paging, each query served by an index (0006)

    def latest_event_id(self) -> int:
        with self.reading("read the newest event id") as connection:
            row = connection.execute(LATEST_EVENT_ID).fetchone()
        return int(row[0]) if row else 0

    def event_tasks(self, event_ids: Sequence[int]) -> dict[int, list[TaskRecord]]:
        if not event_ids:
            return {}
        sql, params = event_tasks_query(POSTGRES, event_ids)
        with self.reading("read the tasks of events") as connection:
            return tasks_by_event(connection.execute(sql, params))

    def page_events(self, query: EventQuery) -> list[StoredEvent]:
        sql, params = page_ids_query(POSTGRES, query)
        with self.reading("read a page of events") as connection:
            ids = [row[0] for row in connection.execute(sql, params)]
        if not ids:
            return []
        return self._events("WHERE id = ANY(%s) ORDER BY id DESC", (ids,))

    def resource_events(self, resource_id: str, limit: int = 500) -> list[StoredEvent]:
        return self._events(POSTGRES.sql(RESOURCE_EVENTS), (resource_id, limit))

    def previous_event(self, resource_id: str, before_event_id: int) -> StoredEvent | None:
        events = self._events(POSTGRES.sql(PREVIOUS_EVENT), (resource_id, before_event_id))
        return events[0] if events else None

    def _events(self, clause: str, params: Sequence[Any]) -> list[StoredEvent]:
        """Events selected by ``clause``, each with its tasks (one query for all of them)."""
        with self.reading("read events") as connection:
            rows = connection.execute(f"SELECT {EVENT_COLUMNS} FROM events {clause}", params)
            found = rows.fetchall()
            tasks: dict[int, list[TaskRecord]] = {}
            if found:
                ids = [row[0] for row in found]
                tasks = tasks_by_event(connection.execute(_EVENTS_TASKS, (ids,)))
        return [stored_event(row, tasks.get(row[0], [])) for row in found]
