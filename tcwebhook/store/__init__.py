"""The durable event store: ``open_store(url)`` picks the backend by the URL's scheme.

The names below load with their modules on first use. The command line imports
``tcwebhook.store.records`` for its options' choices, and with the backends loaded alongside, every
command, ``--help`` and ``--version`` included, started about 0.3 s later.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from tcwebhook.errors import ConfigError

if TYPE_CHECKING:
    from tcwebhook.config import Settings
    from tcwebhook.store.base import Store, display_url
    from tcwebhook.store.clock import utc_now
    from tcwebhook.store.records import (
        AppendResult,
        EventQuery,
        KnownObject,
        NewEvent,
        Outcome,
        StoredEvent,
        TaskRecord,
        dedup_key,
    )
    from tcwebhook.store.sqlite import SqliteStore

_MODULES = {
    "Store": "base",
    "display_url": "base",
    "utc_now": "clock",
    "AppendResult": "records",
    "EventQuery": "records",
    "KnownObject": "records",
    "NewEvent": "records",
    "Outcome": "records",
    "StoredEvent": "records",
    "TaskRecord": "records",
    "dedup_key": "records",
    "SqliteStore": "sqlite",
}

__all__ = [
    "AppendResult",
    "EventQuery",
    "KnownObject",
    "NewEvent",
    "Outcome",
    "SqliteStore",
    "Store",
    "StoredEvent",
    "TaskRecord",
    "dedup_key",
    "display_url",
    "open_store",
    "utc_now",
]


def __getattr__(name: str) -> object:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # looked up once
    return value


SQLITE_PREFIX = "sqlite:///"


def open_store(
    url_or_settings: str | Settings,
    busy_timeout: float = 2.0,
    *,
    read_only: bool = False,
    create: bool = True,
) -> Store:
    """Open (and migrate) the store at ``sqlite:///path`` or ``postgresql://…``.

    ``read_only``: for commands that only read; never creates, migrates or writes, and works on
    a read-only copy. ``create=False``: a missing database is an error, not a new empty one.
    """
    from tcwebhook.store.base import POSTGRES_SCHEMES, display_url
    from tcwebhook.store.sqlite import SqliteStore

    url = url_or_settings if isinstance(url_or_settings, str) else url_or_settings.store_url
    scheme = url.partition("://")[0].lower()
    if scheme in POSTGRES_SCHEMES:
        try:
            from tcwebhook.store.postgres import PostgresStore
        except ImportError as exc:
            if exc.name not in ("psycopg", "psycopg_pool"):
                raise
            raise ConfigError(
                "store.url is a PostgreSQL URL but the PostgreSQL driver is not installed: "
                "pip install 'tcwebhook[postgres]'"
            ) from None
        return PostgresStore(url, read_only=read_only, create=create)
    if not url.startswith(SQLITE_PREFIX) or len(url) == len(SQLITE_PREFIX):
        raise ConfigError(
            f"store.url {display_url(url)!r} is not supported: use sqlite:///path/to/events.db "
            "(sqlite:////abs/path for an absolute path) or postgresql://USER:PASSWORD@HOST/DB"
        )
    return SqliteStore(
        Path(url[len(SQLITE_PREFIX) :]).expanduser(),
        busy_timeout=busy_timeout,
        read_only=read_only,
        create=create,
    )
