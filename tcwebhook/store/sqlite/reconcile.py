"""Reconcile's state on SQLite: what is known per object, recovered events, cursors, runs and
leases. Blocking calls (reconcile runs them in a thread); plain SQL, one statement per question.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson

from tcwebhook.store import sql
from tcwebhook.store.clock import utc_now
from tcwebhook.store.codec import decode_body
from tcwebhook.store.records import AppendResult, KnownObject, NewEvent
from tcwebhook.store.sqlite.connection import SqliteDatabase
from tcwebhook.store.sqlite.writer import insert_events


class SqliteReconcileState(SqliteDatabase):
    """Keeps what reconcile compares against and remembers between runs."""

    def known_objects(
        self, change_kinds: Sequence[str], fetch_kind: str, resource_ids: Sequence[str]
    ) -> dict[str, KnownObject]:
        """For each id: its newest event of ``change_kinds`` that carries a change key, and the
        newest object fetched for a GET notification of ``fetch_kind``."""
        marks = ",".join("?" * len(change_kinds))
        newest_change = (
            "SELECT change_key, kind, body, body_encoding FROM events WHERE resource_id = ? "
            f"AND change_key IS NOT NULL AND kind IN ({marks}) ORDER BY change_key DESC LIMIT 1"
        )
        # Events stored before migration 0005 have no change key: their bodies tell.
        newest_legacy = (
            "SELECT body, body_encoding FROM events WHERE resource_id = ? "
            f"AND change_key IS NULL AND kind IN ({marks}) ORDER BY id DESC LIMIT 1"
        )
        newest_fetched = (
            "SELECT fetched FROM events WHERE resource_id = ? AND kind = ? "
            "AND fetched IS NOT NULL ORDER BY id DESC LIMIT 1"
        )
        known: dict[str, KnownObject] = {}
        with self.reading() as connection:
            for resource_id in resource_ids:
                change = connection.execute(newest_change, (resource_id, *change_kinds)).fetchone()
                legacy = connection.execute(newest_legacy, (resource_id, *change_kinds)).fetchone()
                fetched = connection.execute(newest_fetched, (resource_id, fetch_kind)).fetchone()
                known[resource_id] = KnownObject(
                    resource_id,
                    change[0] if change else None,
                    change[1] if change else None,
                    decode_body(change[2], change[3]) if change else None,
                    decode_body(legacy[0], legacy[1]) if legacy else None,
                    bytes(fetched[0]) if fetched else None,
                )
        return known

    def append_recovered(self, events: Sequence[NewEvent]) -> list[AppendResult]:
        """Store recovered events (with their tasks) in one transaction. One whose change is
        already stored, by a webhook or an earlier run, is a duplicate of that event."""
        results = []
        with self.writing() as connection:
            for event in events:
                existing = connection.execute(
                    "SELECT id FROM events WHERE resource_id = ? AND change_key = ? "
                    "ORDER BY id LIMIT 1",
                    (event.resource_id, event.change_key),
                ).fetchone()
                if existing is not None:
                    results.append(AppendResult(existing[0], duplicate=True))
                else:
                    results.append(insert_events(connection, [event])[0])
        return results

    def reconcile_cursor(self, endpoint: str) -> str | None:
        """The lastUpdatedAt Tradecloud returned for ``endpoint``, exactly as received."""
        with self.reading() as connection:
            row = connection.execute(sql.GET_CURSOR, (endpoint,)).fetchone()
        return row[0] if row else None

    def set_reconcile_cursor(self, endpoint: str, last_updated_at: str) -> None:
        with self.writing() as connection:
            connection.execute(sql.SET_CURSOR, (endpoint, last_updated_at, utc_now()))

    def record_reconcile_run(self, result: dict[str, Any], keep: int = 100) -> None:
        """Keep a run's result (JSON); only the newest ``keep`` runs are kept."""
        with self.writing() as connection:
            connection.execute(sql.RECORD_RUN, (utc_now(), orjson.dumps(result).decode()))
            connection.execute(sql.TRIM_RUNS, (keep,))

    def last_reconcile_run(self) -> dict[str, Any] | None:
        with self.reading() as connection:
            row = connection.execute(sql.LAST_RUN).fetchone()
        return orjson.loads(row[0]) if row else None

    def acquire_lease(self, name: str, holder: str, expires_at: float) -> bool:
        """Take the lease ``name`` until ``expires_at`` (unix time) if it is free, lapsed or
        already ours; False when another holder has it."""
        with self.writing() as connection:
            connection.execute(sql.TAKE_LEASE, (name, holder, expires_at, time.time()))
            row = connection.execute("SELECT holder FROM leases WHERE name = ?", (name,)).fetchone()
        return bool(row and row[0] == holder)

    def release_lease(self, name: str, holder: str, keep_until: float | None = None) -> None:
        """Give the lease back, or keep it until ``keep_until`` so others wait till then."""
        with self.writing() as connection:
            if keep_until is None:
                connection.execute(sql.DROP_LEASE, (name, holder))
            else:
                connection.execute(sql.KEEP_LEASE, (keep_until, name, holder))
