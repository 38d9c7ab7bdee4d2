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
        "0005_reconcile",
        """
        -- The change an event carries: 'c:order:<id>@<lastUpdatedAt as UTC, microseconds>' (or
        -- 'c:shipment:...'); NULL when unknown. A recovered event uses it as its dedup_key, so a
        -- late webhook for a change reconcile already stored, and a rerun, are stored once.
        ALTER TABLE events ADD COLUMN change_key TEXT;
        -- Per poll endpoint, the lastUpdatedAt Tradecloud returned, sent as the next
        -- lastUpdatedAfter (exactly as received, never the local clock).
        CREATE TABLE reconcile_cursors (
            endpoint TEXT PRIMARY KEY,
            last_updated_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        -- The result of each reconcile run (JSON), newest last, for 'status'.
        CREATE TABLE reconcile_runs (
            id INTEGER PRIMARY KEY,
            finished_at TEXT NOT NULL,
            result TEXT NOT NULL
        );
        -- Named leases: one holder at a time among the processes sharing this store.
        CREATE TABLE leases (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            expires_at REAL NOT NULL
        );
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
    # PostgreSQL only (its TOAST storage of the body); kept here so the names stay the same.
    ("0007_body_storage", ""),
    (
        "0008_requests",
        """
        -- The request log: refused requests and failed TLS handshakes, one row per group of
        -- identical ones (a stored event needs none: its event row is its record). The record
        -- itself is JSON (RequestRecord.to_json), every text in it bounded and escaped.
        CREATE TABLE requests (
            id INTEGER PRIMARY KEY,
            row_key TEXT NOT NULL UNIQUE,   -- the aggregator's key: a rewrite replaces the count
            last_seen TEXT NOT NULL,
            first_seen TEXT NOT NULL,
            kind TEXT NOT NULL,             -- http | tls | dropped
            status INTEGER,                 -- NULL for a failed handshake
            count INTEGER NOT NULL,
            record TEXT NOT NULL
        );
        CREATE INDEX requests_last_seen ON requests (last_seen, id);
        """,
    ),
    (
        "0009_message_id_by_dedup_key",
        """
        -- A webhook's dedup key is 'm:' || its message id, so the unique dedup_key index finds it
        -- by message id; a whole index of message ids cost every insert a page of its own.
        -- Only the other events with a message id (recovered ones, GET notifications) keep one.
        DROP INDEX IF EXISTS events_message_id;
        CREATE INDEX events_other_message_id ON events (message_id)
            WHERE message_id IS NOT NULL AND dedup_key IS NOT 'm:' || message_id;
        """,
    ),
]


def migrate(connection: sqlite3.Connection) -> list[str]:
    """Apply the migrations this database has not seen yet; return their names.

    All of them in one ``BEGIN IMMEDIATE`` transaction, and the applied set is read inside it:
    two processes opening a fresh database at once take turns, and the second finds nothing
    left to do (read before the lock, both would run the first migration).
    """
    connection.execute("BEGIN IMMEDIATE")
    try:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        applied = {row[0] for row in connection.execute("SELECT name FROM schema_migrations")}
        done = []
        for name, sql in MIGRATIONS:
            if name in applied:
                continue
            # Statement by statement: executescript() would commit the open transaction first.
            for statement in statements(sql):
                connection.execute(statement)
            connection.execute(
                "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)",
                (name, datetime.now(UTC).isoformat()),
            )
            done.append(name)
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    return done


def pending(connection: sqlite3.Connection) -> list[str]:
    """The migrations this database lacks (without applying them: for read-only opening)."""
    try:
        applied = {row[0] for row in connection.execute("SELECT name FROM schema_migrations")}
    except sqlite3.OperationalError:  # no such table: not a database of ours, or empty
        applied = set()
    return [name for name, _ in MIGRATIONS if name not in applied]


def statements(sql: str) -> list[str]:
    """Split a script into complete statements (a ';' inside a comment or string is kept)."""
    result, current = [], ""
    for part in sql.split(";"):
        current += part + ";"
        if sqlite3.complete_statement(current):
            if current.strip(" \n;"):
                result.append(current.strip())
            current = ""
    return result
