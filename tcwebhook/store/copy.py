"""``tcwebhook store copy SRC DST``: every event, delivery and fetched object, backend to backend.

Events keep their ids, so ``events show 42`` means the same event after a move. Copying again is
harmless: an event whose id (or dedup key) the destination already holds is skipped; a
destination that holds a *different* event under a copied id is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from tcwebhook.errors import ConfigError
from tcwebhook.store.base import Store
from tcwebhook.store.records import NewEvent, StoredEvent, TaskRecord, dedup_key
from tcwebhook.store.rows import INSERT_COLUMNS, event_row
from tcwebhook.store.sql import POSTGRES, SQLITE, Dialect
from tcwebhook.store.sqlite import SqliteStore

BATCH = 200

_EVENT_SQL = (
    f"INSERT INTO events (id, {INSERT_COLUMNS}, fetched, fetched_changed_lines, fetched_at) "
    f"VALUES ({', '.join('?' * 18)}) ON CONFLICT DO NOTHING RETURNING id"
)
_TASK_SQL = (
    "INSERT INTO tasks (event_id, target, state, attempts, next_attempt_at, last_error, output, "
    "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)


class _Connection(Protocol):
    def execute(self, sql: Any, params: Sequence[Any] = ...) -> Any: ...


@dataclass(frozen=True)
class CopyReport:
    total: int
    copied: int
    skipped: int  # already in the destination (an earlier copy, or the same message)


def copy_store(
    source: Store, destination: Store, on_progress: Callable[[int], None] | None = None
) -> CopyReport:
    """Copy every event of ``source`` into ``destination``; ``on_progress(n)`` per batch."""
    total = copied = 0
    for batch in _batches(source.iter_events(batch=BATCH), BATCH):
        copied += _write(destination, batch)
        total += len(batch)
        if on_progress is not None:
            on_progress(len(batch))
    return CopyReport(total=total, copied=copied, skipped=total - copied)


def _write(destination: Store, events: Sequence[StoredEvent]) -> int:
    transaction: AbstractContextManager[Any]
    if isinstance(destination, SqliteStore):
        transaction, dialect = destination.writing(), SQLITE
    else:
        transaction, dialect = destination.copying(), POSTGRES  # type: ignore[attr-defined]
    with transaction as connection:
        return insert_copies(connection, events, dialect)


def insert_copies(connection: _Connection, events: Sequence[StoredEvent], dialect: Dialect) -> int:
    """Insert copies of ``events`` (inside the caller's transaction); how many were new."""
    event_sql, task_sql = dialect.sql(_EVENT_SQL), dialect.sql(_TASK_SQL)
    inserted = 0
    for event in events:
        if connection.execute(event_sql, _copy_row(event)).fetchone() is None:
            _check_same(connection, event, dialect)
            continue
        inserted += 1
        for task in event.tasks:
            connection.execute(task_sql, _copy_task(event.id, task))
    return inserted


def _check_same(connection: _Connection, event: StoredEvent, dialect: Dialect) -> None:
    row = connection.execute(
        dialect.sql("SELECT received_at, kind FROM events WHERE id = ?"), (event.id,)
    ).fetchone()
    if row is not None and (row[0], row[1]) != (event.received_at, event.kind):
        raise ConfigError(
            f"the destination already holds a different event #{event.id}: "
            "copy into an empty store (or the one an earlier copy filled)"
        )


def _copy_row(event: StoredEvent) -> tuple[Any, ...]:
    new = NewEvent(
        received_at=event.received_at,
        kind=event.kind,
        event_name=event.event_name,
        message_id=event.message_id,
        # A recovered event's key is its change key: kept, so a late webhook stays a duplicate.
        dedup_key=event.dedup_key
        or dedup_key(event.kind.endswith("_notification"), event.message_id, event.body),
        resource_id=event.resource_id,
        number=event.number,
        changed_lines=event.changed_lines,
        method=event.method,
        path=event.path,
        headers=event.headers,
        body=event.body,
        change_key=event.change_key,
    )
    fetched_lines = None
    if event.fetched_changed_lines is not None:
        fetched_lines = orjson.dumps(event.fetched_changed_lines).decode()
    return (event.id, *event_row(new), event.fetched, fetched_lines, event.fetched_at)


def _copy_task(event_id: int, task: TaskRecord) -> tuple[Any, ...]:
    state = "pending" if task.state == "running" else task.state  # its claimant stays behind
    return (
        event_id,
        task.target,
        state,
        task.attempts,
        task.next_attempt_at,
        task.last_error,
        task.output,
        task.updated_at,
    )


def _batches(events: Iterator[StoredEvent], size: int) -> Iterator[list[StoredEvent]]:
    batch: list[StoredEvent] = []
    for event in events:
        batch.append(event)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
