"""Rows ↔ records: the columns every backend reads and writes, in one order, and how a row
becomes a record. No driver is imported here; the backends hand over plain rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from tcwebhook.store.codec import decode_body, encode_body
from tcwebhook.store.records import NewEvent, StoredEvent, TaskRecord

TASK_COLUMNS = (
    "id, event_id, target, state, attempts, next_attempt_at, last_error, output, updated_at"
)
EVENT_COLUMNS = (
    "id, received_at, kind, event_name, message_id, resource_id, number, changed_lines, "
    "method, path, headers, body, fetched, fetched_changed_lines, fetched_at, body_encoding, "
    "dedup_key, change_key"
)
# The columns of ``event_row``, in its order.
INSERT_COLUMNS = (
    "received_at, kind, event_name, message_id, dedup_key, resource_id, number, changed_lines, "
    "method, path, headers, body, body_encoding, change_key"
)


def event_row(event: NewEvent) -> tuple[Any, ...]:
    """The values of ``INSERT_COLUMNS`` for ``event``."""
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
        event.change_key,
    )


def stored_event(row: Sequence[Any], tasks: Sequence[TaskRecord]) -> StoredEvent:
    """A row of ``EVENT_COLUMNS`` and its tasks as a StoredEvent.

    Whatever a row holds (SQLite keeps any type in any column, and rows may come from older
    versions or other tools), reading it must not fail: no event may break a reader.
    """
    fetched_lines = _json_column(row[13], list) if row[13] else None
    return StoredEvent(
        id=row[0],
        received_at=_text(row[1]) or "",
        kind=_text(row[2]) or "",
        event_name=_text(row[3]),
        message_id=_text(row[4]),
        resource_id=_text(row[5]),
        number=_text(row[6]),
        changed_lines=tuple(map(str, _json_column(row[7], list) or ())),
        method=_text(row[8]) or "",
        path=_text(row[9]) or "",
        headers=_json_column(row[10], dict) or {},
        body=decode_body(_blob(row[11]), row[15]),
        fetched=_blob(row[12]) if row[12] is not None else None,
        fetched_changed_lines=tuple(map(str, fetched_lines or ())) if row[13] else None,
        fetched_at=_text(row[14]),
        tasks=tuple(tasks),
        dedup_key=_text(row[16]),
        change_key=_text(row[17]),
    )


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _blob(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8", "replace")
    return bytes(value) if value is not None else b""


def _json_column(value: Any, expected: type) -> Any:
    """A JSON column's value if it is of the ``expected`` type, else None."""
    try:
        decoded = orjson.loads(value)
    except (orjson.JSONDecodeError, TypeError):
        return None
    return decoded if isinstance(decoded, expected) else None


def tasks_by_event(rows: Iterable[Sequence[Any]]) -> dict[int, list[TaskRecord]]:
    """Task rows (``TASK_COLUMNS``) grouped by their event id."""
    tasks: dict[int, list[TaskRecord]] = {}
    for row in rows:
        tasks.setdefault(row[1], []).append(TaskRecord(*row))
    return tasks


def status_report(
    kinds: Sequence[Sequence[Any]],
    tasks: Sequence[Sequence[Any]],
    oldest: str | None,
    heads: Sequence[Sequence[Any]],
) -> dict[str, Any]:
    """The shape of ``status()`` from the rows of the four STATUS_ queries."""
    per_target: dict[str, dict[str, int]] = {}
    for target, state, count in tasks:
        per_target.setdefault(target, {})[state] = count
    return {
        "events": {kind: count for kind, count in kinds},
        "tasks": per_target,
        "oldest_unfinished_received_at": oldest,
        "oldest_unfinished": {  # per target: its oldest unfinished delivery
            target: {
                "event_id": event_id,
                "state": state,
                "attempts": attempts,
                "last_error": last_error,
                "received_at": received_at,
            }
            for target, event_id, state, attempts, last_error, received_at in heads
        },
    }
