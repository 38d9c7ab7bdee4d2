"""The outbox on SQLite: claiming due tasks, recording their outcomes, re-queueing, purging.

Blocking calls: the delivery worker runs them in a thread.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any

import orjson

from tcwebhook.store.clock import utc_now
from tcwebhook.store.records import Outcome, StoredEvent, TaskRecord
from tcwebhook.store.rows import TASK_COLUMNS
from tcwebhook.store.sql import (
    ATTACH_FETCHED,
    CLAIMANTS,
    FINISH_TASK,
    RELEASE_CLAIMS,
    SQLITE,
    TARGETS,
    UNFINISHED_STATES,
    WAITS_FOR_FETCH,
    purge_query,
    read_events,
    requeue_query,
)
from tcwebhook.store.sqlite.connection import SqliteDatabase


class SqliteOutbox(SqliteDatabase):
    """Hands out due tasks under a lease and records what became of them."""

    def claim_tasks(
        self, target: str, limit: int, lease_seconds: float, strict_order: bool, claimant: str
    ) -> list[TaskRecord]:
        """Mark up to ``limit`` due tasks of ``target`` as running, for ``lease_seconds``.

        With ``strict_order`` only the oldest unfinished task may run, and only when it is due
        (and, for a GET notification, fetched): a failing event holds back the ones after it,
        so the sink sees them in order. A claim
        that lapses (the process died) makes the task due again.
        """
        now = time.time()
        unfinished = f"target = ? AND state IN {UNFINISHED_STATES}"
        if strict_order:  # the leading run of due tasks, stopping at the first one not ready
            sql = (
                f"SELECT id, next_attempt_at, {WAITS_FOR_FETCH} FROM tasks WHERE {unfinished} "
                "ORDER BY id LIMIT ?"
            )
            params: tuple[Any, ...] = (target, limit)
        else:
            sql = (
                f"SELECT id, 0, 0 FROM tasks WHERE {unfinished} AND NOT {WAITS_FOR_FETCH} "
                "AND next_attempt_at <= ? ORDER BY id LIMIT ?"
            )
            params = (target, now, limit)

        def due_ids(connection: sqlite3.Connection) -> list[int]:
            ids = []
            for task_id, due, waits_for_fetch in connection.execute(sql, params).fetchall():
                if due > now or waits_for_fetch:
                    break
                ids.append(task_id)
            return ids

        # Look first without the write lock: an idle worker polls often, and taking the lock
        # for nothing would make the event writer wait for it
        # (docs/performance-notes.md#6-the-idle-delivery-worker-reads-without-the-write-lock).
        with self.reading() as connection:
            if not due_ids(connection):
                return []
        with self.writing() as connection:
            ids = due_ids(connection)
            if not ids:
                return []
            marks = ",".join("?" * len(ids))
            connection.execute(
                f"UPDATE tasks SET state = 'running', next_attempt_at = ?, claimed_by = ?, "
                f"updated_at = ? WHERE id IN ({marks})",
                (now + lease_seconds, claimant, utc_now(), *ids),
            )
            rows = connection.execute(
                f"SELECT {TASK_COLUMNS} FROM tasks WHERE id IN ({marks}) ORDER BY id", ids
            )
            return [TaskRecord(*row) for row in rows]

    def targets(self) -> list[str]:
        """Every target (sink name or ``@fetch``) that has deliveries, sorted."""
        with self.reading() as connection:
            return [str(row[0]) for row in connection.execute(TARGETS)]

    def claimants(self) -> list[str]:
        """Who holds running tasks right now."""
        with self.reading() as connection:
            return [row[0] for row in connection.execute(CLAIMANTS) if row[0]]

    def release_claims(self, claimant: str) -> int:
        """Make the running tasks of a worker that died due again at once."""
        with self.writing() as connection:
            return connection.execute(RELEASE_CLAIMS, (time.time(), utc_now(), claimant)).rowcount

    def finish_tasks(self, outcomes: Sequence[Outcome], released: Sequence[int] = ()) -> None:
        """Record attempts (done, failed until ``next_attempt_at``, or dead) and give back
        claimed tasks that were not attempted, in one transaction."""
        now = utc_now()
        with self.writing() as connection:
            connection.executemany(
                FINISH_TASK,
                [(o.state, o.error, o.output, o.next_attempt_at, now, o.task.id) for o in outcomes],
            )
            connection.executemany(
                "UPDATE tasks SET state = 'pending', next_attempt_at = ?, claimed_by = NULL, "
                "updated_at = ? WHERE id = ?",
                [(time.time(), now, task_id) for task_id in released],
            )

    def get_events(self, event_ids: Sequence[int]) -> list[StoredEvent]:
        with self.reading() as connection:
            return read_events(connection, SQLITE, event_ids)

    def attach_fetched(self, event_id: int, fetched: bytes, changed_lines: list[str]) -> None:
        """Attach the object fetched for a GET notification, with its changed lines."""
        with self.writing() as connection:
            connection.execute(
                ATTACH_FETCHED,
                (fetched, orjson.dumps(changed_lines).decode(), utc_now(), event_id),
            )

    def requeue_tasks(
        self, event_id: int | None = None, target: str | None = None, dead_only: bool = False
    ) -> int:
        """Make tasks due now with a fresh attempt count: all of one event's, or the dead ones."""
        sql, params = requeue_query(SQLITE, event_id, target, dead_only)
        with self.writing() as connection:
            return connection.execute(sql, (time.time(), utc_now(), *params)).rowcount

    def purge(self, before: str, force: bool = False) -> int:
        """Delete events received before ``before`` whose tasks are all done (any, with force)."""
        with self.writing() as connection:
            return connection.execute(purge_query(force), (before,)).rowcount
