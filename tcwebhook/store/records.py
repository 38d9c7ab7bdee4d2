"""The rows the store takes and gives, as plain frozen data."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson


class TaskState(StrEnum):
    """The states of a delivery (a task), the one list every command takes them from."""

    PENDING = "pending"
    RUNNING = "running"
    FAILED = "failed"
    DEAD = "dead"
    DONE = "done"


def embedded_json(raw: bytes | None) -> Any:
    """Stored JSON bytes as a value to put into a document.

    Parsed, as a rule. A body nested deeper than the serialiser's recursion limit becomes an
    ``orjson.Fragment``, written as stored without being serialised again; bytes that are not
    JSON (never accepted by ``serve``, but a stored row may hold anything) become their text.
    So no stored event can break a reader.
    """
    if not raw:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return bytes(raw).decode("utf-8", "replace")
    if isinstance(value, dict | list):
        try:
            orjson.dumps(value)
        except orjson.JSONEncodeError:
            return orjson.Fragment(raw)
    return value


@dataclass(slots=True)  # built for every request: frozen costs an object.__setattr__ per field
class NewEvent:
    """An event about to be stored, with the tasks that must follow it."""

    received_at: str
    kind: str
    event_name: str | None
    message_id: str | None
    dedup_key: str | None
    resource_id: str | None
    number: str | None
    changed_lines: tuple[str, ...]
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    tasks: tuple[str, ...] = ()  # sink names, or "@fetch" for a GET notification
    # The change the event carries ('c:order:<id>@<instant>'), see tcwebhook.events.change_key.
    change_key: str | None = None


@dataclass(frozen=True)
class AppendResult:
    id: int
    duplicate: bool


@dataclass(frozen=True)
class TaskRecord:
    id: int
    event_id: int
    target: str
    state: str
    attempts: int
    next_attempt_at: float
    last_error: str | None
    output: str | None
    updated_at: str


@dataclass(frozen=True)
class Outcome:
    """The result of one delivery attempt, to be recorded."""

    task: TaskRecord
    state: str  # done | failed | dead
    error: str | None = None
    output: str | None = None
    next_attempt_at: float = 0.0


@dataclass(frozen=True)
class EventQuery:
    """One page of events, newest first, for a browsing UI (keyset paging on the id).

    ``search``: an event id (``#12`` or ``12``), a PO / shipment number or its start, a
    Tradecloud order / shipment id, or a message id. ``before`` / ``after``: the page below /
    above that id.
    """

    kind: str | None = None
    event_name: str | None = None  # exact, or a glob with '*'
    task_state: str | None = None
    search: str | None = None
    before: int | None = None
    after: int | None = None
    limit: int = 50


@dataclass(frozen=True)
class StoredEvent:
    id: int
    received_at: str
    kind: str
    event_name: str | None
    message_id: str | None
    resource_id: str | None
    number: str | None
    changed_lines: tuple[str, ...]
    method: str
    path: str
    headers: dict[str, Any]
    body: bytes
    fetched: bytes | None = None
    fetched_changed_lines: tuple[str, ...] | None = None
    fetched_at: str | None = None
    tasks: tuple[TaskRecord, ...] = field(default=())
    # How it is deduplicated: for ``store copy``, which keeps them; not part of the JSON shapes.
    dedup_key: str | None = None
    change_key: str | None = None

    def summary(self) -> dict[str, Any]:
        """The stable JSON shape of ``events list --json``."""
        return {
            "id": self.id,
            "received_at": self.received_at,
            "kind": self.kind,
            "event_name": self.event_name,
            "message_id": self.message_id,
            "resource_id": self.resource_id,
            "number": self.number,
            "method": self.method,
            "changed_lines": list(self.changed_lines),
            "tasks": [{"target": task.target, "state": task.state} for task in self.tasks],
        }

    def detail(self) -> dict[str, Any]:
        """The JSON shape of ``events show --json``: the summary plus body, headers and tasks."""
        detail = self.summary()
        detail.update(
            path=self.path,
            headers=self.headers,
            body=embedded_json(self.body),
            fetched=embedded_json(self.fetched),
            fetched_changed_lines=(
                list(self.fetched_changed_lines) if self.fetched_changed_lines is not None else None
            ),
            fetched_at=self.fetched_at,
            tasks=[
                {
                    "target": task.target,
                    "state": task.state,
                    "attempts": task.attempts,
                    "last_error": task.last_error,
                    "output": task.output,
                    "updated_at": task.updated_at,
                }
                for task in self.tasks
            ],
        )
        return detail


@dataclass(frozen=True)
class KnownObject:
    """What the store holds about one order or shipment, for reconcile to compare a poll with."""

    resource_id: str
    change_key: str | None = None  # the newest change stored for it (webhook or recovered)
    change_kind: str | None = None
    change_body: bytes | None = None  # the body of that event
    legacy_body: bytes | None = None  # the newest such event stored without a change key
    fetched: bytes | None = None  # the newest object fetched for a GET notification of it


def dedup_key(is_notification: bool, message_id: str | None, body: bytes) -> str | None:
    """The key that makes an event stored once: its messageId, else the hash of its body.

    None for a GET notification: each one is news, the same order changes many times.
    """
    if is_notification:
        return None
    if message_id:
        return "m:" + message_id
    return "b:" + hashlib.sha256(body).hexdigest()
