"""The durable event store: ``open_store(url)``."""

from __future__ import annotations

from pathlib import Path

from tcwebhook.errors import ConfigError
from tcwebhook.store.records import (
    AppendResult,
    EventQuery,
    KnownObject,
    NewEvent,
    Outcome,
    StoredEvent,
    TaskRecord,
)
from tcwebhook.store.sqlite import SqliteStore, utc_now

__all__ = [
    "AppendResult",
    "EventQuery",
    "KnownObject",
    "NewEvent",
    "Outcome",
    "SqliteStore",
    "StoredEvent",
    "TaskRecord",
    "open_store",
    "utc_now",
]


def open_store(
    url: str, busy_timeout: float = 2.0, *, read_only: bool = False, create: bool = True
) -> SqliteStore:
    """Open (and migrate) the store at ``sqlite:///path``; the only backend so far.

    ``read_only``: for commands that only read; never creates, migrates or writes, and works on
    a read-only copy. ``create=False``: a missing database is an error, not a new empty one.
    """
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise ConfigError(
            f"store.url {url!r} is not supported: use sqlite:///path/to/events.db "
            "(sqlite:////abs/path for an absolute path)"
        )
    return SqliteStore(
        Path(url[len(prefix) :]).expanduser(),
        busy_timeout=busy_timeout,
        read_only=read_only,
        create=create,
    )
