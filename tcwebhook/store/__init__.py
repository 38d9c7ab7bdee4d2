"""The durable event store: ``open_store(url)``."""

from __future__ import annotations

from pathlib import Path

from tcwebhook.errors import ConfigError
from tcwebhook.store.records import (
    AppendResult,
    EventQuery,
    NewEvent,
    Outcome,
    StoredEvent,
    TaskRecord,
)
from tcwebhook.store.sqlite import SqliteStore, utc_now

__all__ = [
    "AppendResult",
    "EventQuery",
    "NewEvent",
    "Outcome",
    "SqliteStore",
    "StoredEvent",
    "TaskRecord",
    "open_store",
    "utc_now",
]


def open_store(url: str, busy_timeout: float = 2.0) -> SqliteStore:
    """Open (and migrate) the store at ``sqlite:///path``; the only backend so far."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise ConfigError(
            f"store.url {url!r} is not supported: use sqlite:///path/to/events.db "
            "(sqlite:////abs/path for an absolute path)"
        )
    return SqliteStore(Path(url[len(prefix) :]).expanduser(), busy_timeout=busy_timeout)
