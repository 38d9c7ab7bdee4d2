"""The outbox on PostgreSQL: claiming due tasks, recording their outcomes, re-queueing, purging.

Tasks are claimed with ``FOR UPDATE SKIP LOCKED`` and a lease; a strictly ordered sink claims
under a per-sink advisory lock. Blocking calls: the delivery worker runs them in a thread.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import orjson

from tcwebhook.store.clock import utc_now
from tcwebhook.store.postgres.connection import PostgresDatabase
from tcwebhook.store.postgres.listen import CHANNEL, NOTIFY
from tcwebhook.store.postgres.migrations import LOCK_CLASS
from tcwebhook.store.records import Outcome, StoredEvent, TaskRecord
from tcwebhook.store.rows import TASK_COLUMNS
from tcwebhook.store.sql import (
    ATTACH_FETCHED,
    CLAIMANTS,
    FINISH_TASK,
    POSTGRES,
    RELEASE_CLAIMS,
    TARGETS,
    UNFINISHED_STATES,
    WAITS_FOR_FETCH,
    purge_query,
    read_events,
    requeue_query,
)

_UNFINISHED = f"target = %s AND state IN {UNFINISHED_STATES}"
_CLAIM = (
    "UPDATE tasks SET state = 'running', next_attempt_at = %s, claimed_by = %s, "
    f"updated_at = %s WHERE id = ANY(%s) RETURNING {TASK_COLUMNS}"
)


class PostgresOutbox(PostgresDatabase):
    """Hands out due tasks under a lease and records what became of them."""

    def claim_tasks(
        self, target: str, limit: int, lease_seconds: float, strict_order: bool, claimant: str
    ) -> list[TaskRecord]:
        now = time.time()
        with self.writing("claim tasks") as connection:
            if strict_order:
                # One claimer per sink at a time, across every process: the leading run of due
                # tasks, stopping at the first one not due, still running elsewhere, or
                # waiting for its fetch.
                connection.execute(
                    "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_CLASS, target)
                )
                rows = connection.execute(
                    f"SELECT id, next_attempt_at, {WAITS_FOR_FETCH} FROM tasks "
                    f"WHERE {_UNFINISHED} ORDER BY id LIMIT %s",
                    (target, limit),
                ).fetchall()
                ids = []
                for task_id, due, waits_for_fetch in rows:
                    if due > now or waits_for_fetch:
                        break
                    ids.append(task_id)
            else:
                ids = [
                    row[0]
                    for row in connection.execute(
                        f"SELECT id FROM tasks WHERE {_UNFINISHED} AND NOT {WAITS_FOR_FETCH} "
                        "AND next_attempt_at <= %s ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
                        (target, now, limit),
                    )
                ]
            if not ids:
                return []
            claimed = connection.execute(
                _CLAIM, (now + lease_seconds, claimant, utc_now(), ids)
            ).fetchall()
        return sorted((TaskRecord(*row) for row in claimed), key=lambda task: task.id)

    def targets(self) -> list[str]:
        with self.reading("list targets") as connection:
            return [str(row[0]) for row in connection.execute(TARGETS)]

    def claimants(self) -> list[str]:
        with self.reading("list claims") as connection:
            rows = connection.execute(CLAIMANTS).fetchall()
        return [row[0] for row in rows if row[0]]

    def release_claims(self, claimant: str) -> int:
        with self.writing("release claims") as connection:
            return connection.execute(
                POSTGRES.sql(RELEASE_CLAIMS), (time.time(), utc_now(), claimant)
            ).rowcount

    def finish_tasks(self, outcomes: Sequence[Outcome], released: Sequence[int] = ()) -> None:
        now = utc_now()
        with self.writing("record deliveries") as connection, connection.cursor() as cursor:
            if outcomes:
                cursor.executemany(
                    POSTGRES.sql(FINISH_TASK),
                    [
                        (o.state, o.error, o.output, o.next_attempt_at, now, o.task.id)
                        for o in outcomes
                    ],
                )
            if released:
                cursor.execute(
                    "UPDATE tasks SET state = 'pending', next_attempt_at = %s, claimed_by = NULL, "
                    "updated_at = %s WHERE id = ANY(%s)",
                    (time.time(), now, list(released)),
                )

    def get_events(self, event_ids: Sequence[int]) -> list[StoredEvent]:
        with self.reading("read events to deliver") as connection:
            return read_events(connection, POSTGRES, event_ids)

    def attach_fetched(self, event_id: int, fetched: bytes, changed_lines: list[str]) -> None:
        with self.writing("attach the fetched object") as connection:
            connection.execute(
                POSTGRES.sql(ATTACH_FETCHED),
                (fetched, orjson.dumps(changed_lines).decode(), utc_now(), event_id),
            )

    def requeue_tasks(
        self, event_id: int | None = None, target: str | None = None, dead_only: bool = False
    ) -> int:
        sql, params = requeue_query(POSTGRES, event_id, target, dead_only)
        with self.writing("requeue tasks") as connection:
            count = connection.execute(sql, (time.time(), utc_now(), *params)).rowcount
            if count:
                connection.execute(NOTIFY, (CHANNEL,))
            return count

    def purge(self, before: str, force: bool = False) -> int:
        with self.writing("purge events") as connection:
            return connection.execute(POSTGRES.sql(purge_query(force)), (before,)).rowcount
