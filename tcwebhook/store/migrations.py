"""Named schema migrations, applied once each and recorded in ``schema_migrations``.

Never edit a migration that has shipped: add a new one at the end.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_events",
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            received_at TEXT NOT NULL,
            kind TEXT NOT NULL,
            event_name TEXT,
            message_id TEXT,
            dedup_key TEXT UNIQUE,          -- messageId, else body hash; NULL for GET notifications
            resource_id TEXT,               -- Tradecloud order or shipment id
            number TEXT,                    -- purchase order or shipment number
            changed_lines TEXT NOT NULL,    -- JSON array of line keys
            method TEXT NOT NULL,
            path TEXT NOT NULL,
            headers TEXT NOT NULL,          -- JSON object, credentials removed
            body BLOB NOT NULL,             -- the raw bytes as received
            fetched BLOB,                   -- object fetched from the API for a GET notification
            fetched_changed_lines TEXT,
            fetched_at TEXT
        );
        CREATE INDEX events_kind ON events (kind, id);
        CREATE INDEX events_resource ON events (resource_id, id);
        """,
    ),
    (
        "0002_tasks",
        """
        -- Work that follows a stored event: one row per sink delivery, or the API fetch of a
        -- GET notification (target '@fetch'). Inserted in the same transaction as the event.
        CREATE TABLE tasks (
            id INTEGER PRIMARY KEY,
            event_id INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
            target TEXT NOT NULL,
            state TEXT NOT NULL,            -- pending | running | done | failed | dead
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,  -- unix time; for 'running': when the claim lapses
            last_error TEXT,
            output TEXT,
            claimed_by TEXT,                -- host:pid of the worker running it
            updated_at TEXT NOT NULL,
            UNIQUE (event_id, target)
        );
        CREATE INDEX tasks_due ON tasks (target, state, next_attempt_at, id);
        """,
    ),
    (
        "0003_body_encoding",
        """
        -- How events.body is stored: NULL for the raw bytes, 'zstd' for a zstd frame of them.
        -- Large bodies are compressed: each is written twice (WAL, then checkpoint).
        ALTER TABLE events ADD COLUMN body_encoding TEXT;
        """,
    ),
    (
        "0006_inspector_indexes",
        """
        -- Keyset paging of the inspector's event list, newest first, under each filter:
        -- by event name, by PO / shipment number (search), by message id, by delivery state.
        CREATE INDEX IF NOT EXISTS events_event_name ON events (event_name, id);
        CREATE INDEX IF NOT EXISTS events_number ON events (number, id);
        CREATE INDEX IF NOT EXISTS events_message_id ON events (message_id);
        CREATE INDEX IF NOT EXISTS tasks_state_event ON tasks (state, event_id);
        """,
    ),
]


def migrate(connection: sqlite3.Connection) -> list[str]:
    """Apply the migrations this database has not seen yet; return their names."""
    connection.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    applied = {row[0] for row in connection.execute("SELECT name FROM schema_migrations")}
    done = []
    for name, sql in MIGRATIONS:
        if name in applied:
            continue
        with connection:
            connection.executescript(f"BEGIN IMMEDIATE;\n{sql}\n")
            connection.execute(
                "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)",
                (name, datetime.now(UTC).isoformat()),
            )
        done.append(name)
    return done
