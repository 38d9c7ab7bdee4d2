"""Reconcile's state on PostgreSQL: what is known per object, recovered events, cursors, runs
and leases. Blocking calls (reconcile runs them in a thread); each one statement or one
transaction, atomic across processes and hosts."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson

from tcwebhook.store import sql
from tcwebhook.store.clock import utc_now
from tcwebhook.store.codec import decode_body
from tcwebhook.store.postgres.connection import PostgresDatabase
from tcwebhook.store.postgres.migrations import APPEND_LOCK, LOCK_CLASS
from tcwebhook.store.postgres.writer import fit_indexes, insert_batch
from tcwebhook.store.records import AppendResult, KnownObject, NewEvent
from tcwebhook.store.sql import POSTGRES


class PostgresReconcileState(PostgresDatabase):
    """Keeps what reconcile compares against and remembers between runs."""

    def known_objects(
        self, change_kinds: Sequence[str], fetch_kind: str, resource_ids: Sequence[str]
    ) -> dict[str, KnownObject]:
        """One query for all ids: per id, three index lookups (LATERAL)."""
        query = (
            "SELECT r.id, c.change_key, c.kind, c.body, c.body_encoding, "
            "l.body, l.body_encoding, f.fetched FROM unnest(%(ids)s::text[]) AS r(id) "
            "LEFT JOIN LATERAL (SELECT change_key, kind, body, body_encoding FROM events "
            "WHERE resource_id = r.id AND change_key IS NOT NULL AND kind = ANY(%(kinds)s) "
            "ORDER BY change_key DESC LIMIT 1) c ON true "
            # Events stored before migration 0005 have no change key: their bodies tell.
            "LEFT JOIN LATERAL (SELECT body, body_encoding FROM events "
            "WHERE resource_id = r.id AND change_key IS NULL AND kind = ANY(%(kinds)s) "
            "ORDER BY id DESC LIMIT 1) l ON true "
            "LEFT JOIN LATERAL (SELECT fetched FROM events WHERE resource_id = r.id "
            "AND kind = %(fetch)s AND fetched IS NOT NULL ORDER BY id DESC LIMIT 1) f ON true"
        )
        params = {"ids": list(resource_ids), "kinds": list(change_kinds), "fetch": fetch_kind}
        with self.reading("read what is known of objects") as connection:
            rows = connection.execute(query, params).fetchall()
        return {
            row[0]: KnownObject(
                row[0],
                row[1],
                row[2],
                decode_body(row[3], row[4]) if row[1] is not None else None,
                decode_body(row[5], row[6]) if row[5] is not None else None,
                bytes(row[7]) if row[7] is not None else None,
            )
            for row in rows
        }

    def append_recovered(self, events: Sequence[NewEvent]) -> list[AppendResult]:
        """Store recovered events (with their tasks) in one transaction. One whose change is
        already stored, by a webhook or an earlier run, is a duplicate of that event."""
        if not events:
            return []
        events = [fit_indexes(event) for event in events]
        with self.writing("store recovered events") as connection:
            # Under the append lock: no webhook of the same change commits in between.
            connection.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, APPEND_LOCK))
            stored = dict(
                connection.execute(
                    "SELECT DISTINCT ON (resource_id, change_key) "
                    "resource_id || ' ' || change_key, id FROM events "
                    "WHERE (resource_id, change_key) IN "
                    "(SELECT * FROM unnest(%s::text[], %s::text[])) "
                    "ORDER BY resource_id, change_key, id",
                    (
                        [event.resource_id for event in events],
                        [event.change_key for event in events],
                    ),
                ).fetchall()
            )
            new = [e for e in events if f"{e.resource_id} {e.change_key}" not in stored]
            inserted = iter(insert_batch(connection, new) if new else [])
            return [
                AppendResult(stored[key], duplicate=True)
                if (key := f"{event.resource_id} {event.change_key}") in stored
                else next(inserted)
                for event in events
            ]

    def reconcile_cursor(self, endpoint: str) -> str | None:
        with self.reading("read the reconcile cursor") as connection:
            row = connection.execute(POSTGRES.sql(sql.GET_CURSOR), (endpoint,)).fetchone()
        return row[0] if row else None

    def set_reconcile_cursor(self, endpoint: str, last_updated_at: str) -> None:
        with self.writing("store the reconcile cursor") as connection:
            connection.execute(POSTGRES.sql(sql.SET_CURSOR), (endpoint, last_updated_at, utc_now()))

    def record_reconcile_run(self, result: dict[str, Any], keep: int = 100) -> None:
        with self.writing("record the reconcile run") as connection:
            connection.execute(
                POSTGRES.sql(sql.RECORD_RUN), (utc_now(), orjson.dumps(result).decode())
            )
            connection.execute(POSTGRES.sql(sql.TRIM_RUNS), (keep,))

    def last_reconcile_run(self) -> dict[str, Any] | None:
        with self.reading("read the last reconcile run") as connection:
            row = connection.execute(sql.LAST_RUN).fetchone()
        return orjson.loads(row[0]) if row else None

    def acquire_lease(self, name: str, holder: str, expires_at: float) -> bool:
        """One statement, atomic across processes and hosts."""
        with self.writing("take a lease") as connection:
            row = connection.execute(
                POSTGRES.sql(sql.TAKE_LEASE) + " RETURNING holder",
                (name, holder, expires_at, time.time()),
            ).fetchone()
        return row is not None

    def release_lease(self, name: str, holder: str, keep_until: float | None = None) -> None:
        with self.writing("release a lease") as connection:
            if keep_until is None:
                connection.execute(POSTGRES.sql(sql.DROP_LEASE), (name, holder))
            else:
                connection.execute(POSTGRES.sql(sql.KEEP_LEASE), (keep_until, name, holder))
