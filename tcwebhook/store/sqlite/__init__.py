"""The embedded default backend: one SQLite file, a group-commit writer, the outbox, queries
and named migrations (see ``store.py`` for how the pieces fit)."""

from tcwebhook.store.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
