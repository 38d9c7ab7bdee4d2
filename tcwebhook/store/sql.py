"""Query text every backend shares: written once with ``?`` marks and turned into a backend's
dialect (``Dialect.sql``), or built for a dialect by the functions here."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tcwebhook.store.records import EventQuery, StoredEvent
from tcwebhook.store.rows import EVENT_COLUMNS, TASK_COLUMNS, stored_event, tasks_by_event


@dataclass(frozen=True)
class Dialect:
    """How a backend's SQL differs in the queries built here."""

    mark: str  # the parameter placeholder
    glob: str  # the operator that matches event_name against a pattern
    pattern: Callable[[str], str]  # a shell glob as that operator's pattern
    text_order: str = ""  # appended to a text column compared by range, for bytewise order
    distinct: str = "IS NOT"  # NULL-safe "not equal" (SQLite learnt IS DISTINCT FROM in 3.39)

    def sql(self, text: str) -> str:
        """``text`` written with ``?`` marks, in this dialect."""
        return text if self.mark == "?" else text.replace("?", self.mark)


def glob_to_like(pattern: str) -> str:
    """A shell glob (``Order*``, ``?``) as a LIKE pattern, with LIKE's own wildcards escaped."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


SQLITE = Dialect(mark="?", glob="GLOB", pattern=str)
POSTGRES = Dialect(
    mark="%s",
    glob="LIKE",
    pattern=glob_to_like,
    text_order=' COLLATE "C"',
    distinct="IS DISTINCT FROM",
)


UNFINISHED_STATES = "('pending', 'failed', 'running')"
# The events in the partial message id index (migration 0009): those whose dedup key is not
# 'm:' || their message id.
OTHER_MESSAGE_ID = "e.message_id IS NOT NULL AND e.dedup_key {distinct} 'm:' || e.message_id"

# The status queries, the same text on every backend (no parameters): ``rows.status_report``
# gives them their shape.
STATUS_KINDS = "SELECT kind, count(*) FROM events GROUP BY kind"
STATUS_TASKS = "SELECT target, state, count(*) FROM tasks GROUP BY target, state"
STATUS_OLDEST = (
    "SELECT min(e.received_at) FROM tasks t JOIN events e ON e.id = t.event_id "
    f"WHERE t.state IN {UNFINISHED_STATES}"
)
STATUS_HEADS = (
    "SELECT t.target, t.event_id, t.state, t.attempts, t.last_error, e.received_at "
    "FROM tasks t JOIN events e ON e.id = t.event_id WHERE t.id IN ("
    f"SELECT min(id) FROM tasks WHERE state IN {UNFINISHED_STATES} GROUP BY target)"
)


# Statements whose text is the same on every backend but for the mark (``Dialect.sql``).

# Reading events.
COUNT_EVENTS = "SELECT count(*) FROM events"
LATEST_EVENT_ID = "SELECT coalesce(max(id), 0) FROM events"
# What follows ``SELECT EVENT_COLUMNS FROM events`` to read events with their tasks.
EVENT_BY_ID = "WHERE id = ?"
EVENTS_SINCE = "WHERE id > ? AND received_at >= ? ORDER BY id LIMIT ?"
RESOURCE_EVENTS = "WHERE resource_id = ? ORDER BY id LIMIT ?"
PREVIOUS_EVENT = "WHERE resource_id = ? AND id < ? ORDER BY id DESC LIMIT 1"
PREVIOUS_FETCHED = (
    "SELECT fetched FROM events WHERE resource_id = ? AND id < ? "
    "AND fetched IS NOT NULL ORDER BY id DESC LIMIT 1"
)

# The outbox.
INSERT_TASK = (
    "INSERT INTO tasks (event_id, target, state, next_attempt_at, updated_at) "
    "VALUES (?, ?, 'pending', ?, ?)"
)
# A sink waits for the API fetch of a GET notification, so it can hand on the object.
WAITS_FOR_FETCH = (
    "EXISTS (SELECT 1 FROM tasks f WHERE f.event_id = tasks.event_id "
    "AND f.target = '@fetch' AND f.id != tasks.id AND f.state NOT IN ('done', 'dead'))"
)
TARGETS = "SELECT DISTINCT target FROM tasks ORDER BY target"
CLAIMANTS = "SELECT DISTINCT claimed_by FROM tasks WHERE state = 'running'"
RELEASE_CLAIMS = (
    "UPDATE tasks SET state = 'pending', next_attempt_at = ?, updated_at = ? "
    "WHERE state = 'running' AND claimed_by = ?"
)
FINISH_TASK = (
    "UPDATE tasks SET state = ?, attempts = attempts + 1, last_error = ?, output = ?, "
    "next_attempt_at = ?, claimed_by = NULL, updated_at = ? WHERE id = ?"
)
ATTACH_FETCHED = (
    "UPDATE events SET fetched = ?, fetched_changed_lines = ?, fetched_at = ? WHERE id = ?"
)

# Reconcile's state.
GET_CURSOR = "SELECT last_updated_at FROM reconcile_cursors WHERE endpoint = ?"
SET_CURSOR = (
    "INSERT INTO reconcile_cursors (endpoint, last_updated_at, updated_at) "
    "VALUES (?, ?, ?) ON CONFLICT (endpoint) DO UPDATE SET "
    "last_updated_at = excluded.last_updated_at, updated_at = excluded.updated_at"
)
RECORD_RUN = "INSERT INTO reconcile_runs (finished_at, result) VALUES (?, ?)"
TRIM_RUNS = "DELETE FROM reconcile_runs WHERE id <= (SELECT max(id) FROM reconcile_runs) - ?"
LAST_RUN = "SELECT result FROM reconcile_runs ORDER BY id DESC LIMIT 1"
# Taken only if free, lapsed (by the caller's clock) or already ours.
TAKE_LEASE = (
    "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?) "
    "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
    "expires_at = excluded.expires_at "
    "WHERE leases.expires_at < ? OR leases.holder = excluded.holder"
)
DROP_LEASE = "DELETE FROM leases WHERE name = ? AND holder = ?"
KEEP_LEASE = "UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ?"


def purge_query(force: bool) -> str:
    """``purge``'s DELETE (one mark: ``before``); without ``force`` only finished events."""
    sql = "DELETE FROM events WHERE received_at < ?"
    if not force:
        sql += (
            " AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.event_id = events.id "
            "AND t.state != 'done')"
        )
    return sql


def requeue_query(
    dialect: Dialect, event_id: int | None, target: str | None, dead_only: bool
) -> tuple[str, list[Any]]:
    """``requeue_tasks``' UPDATE, with marks for (next_attempt_at, updated_at, *params)."""
    mark = dialect.mark
    where = ["state != 'running'"]
    params: list[Any] = []
    if event_id is not None:
        where.append(f"event_id = {mark}")
        params.append(event_id)
    if dead_only:
        where.append("state = 'dead'")
    if target is not None:
        where.append(f"target = {mark}")
        params.append(target)
    sql = (
        f"UPDATE tasks SET state = 'pending', attempts = 0, next_attempt_at = {mark}, "
        f"updated_at = {mark} WHERE {' AND '.join(where)}"
    )
    return sql, params


# ``event_tasks`` reads at most this many events' tasks in one call (one query, on the
# tasks' event_id index): what one live view polls per tick.
MAX_EVENT_TASKS = 200


def event_tasks_query(dialect: Dialect, event_ids: Sequence[int]) -> tuple[str, list[Any]]:
    """The SQL of ``event_tasks`` and its parameters (ids beyond ``MAX_EVENT_TASKS`` ignored)."""
    return tasks_of_events_query(dialect, list(event_ids)[:MAX_EVENT_TASKS])


def tasks_of_events_query(dialect: Dialect, event_ids: Sequence[int]) -> tuple[str, list[Any]]:
    """The tasks of these events in one query (the tasks' event_id index), in id order."""
    ids = list(event_ids)
    marks = ", ".join([dialect.mark] * len(ids)) or "NULL"
    sql = f"SELECT {TASK_COLUMNS} FROM tasks WHERE event_id IN ({marks}) ORDER BY id"
    return sql, ids


# ``get_events`` reads this many events per query at most, so that the parameters of one query
# fit every backend's limit (a claimed batch is far smaller).
GET_EVENTS_CHUNK = 500


def events_by_ids_query(dialect: Dialect, event_ids: Sequence[int]) -> tuple[str, list[Any]]:
    """What follows ``SELECT EVENT_COLUMNS FROM events`` to read these events in id order, and
    its parameters; ids outside the integer range that no backend can store are left out."""
    ids = [i for i in event_ids if 0 < i < 2**63]
    marks = ", ".join([dialect.mark] * len(ids)) or "NULL"
    return f"WHERE id IN ({marks}) ORDER BY id", ids


def list_filters(
    dialect: Dialect, kind: str | None, event_name: str | None, task_state: str | None
) -> tuple[str, list[Any]]:
    """The WHERE clause (or "") of ``list_events`` on ``events``, and its parameters."""
    mark = dialect.mark
    where: list[str] = []
    params: list[Any] = []
    if task_state:
        where.append(
            f"EXISTS (SELECT 1 FROM tasks t WHERE t.event_id = events.id AND t.state = {mark})"
        )
        params.append(task_state)
    if kind:
        where.append(f"kind = {mark}")
        params.append(kind)
    if event_name:
        where.append(f"event_name {dialect.glob} {mark}")
        params.append(dialect.pattern(event_name))
    return ("WHERE " + " AND ".join(where)) if where else "", params


def page_ids_query(dialect: Dialect, query: EventQuery) -> tuple[str, list[Any]]:
    """The SQL selecting the ids of one page of ``query`` (keyset paging), and its parameters.

    Every alternative is served by an index (migration 0006), so a page costs the same with a
    million stored events as with ten.
    """
    mark = dialect.mark
    where, params = _query_filters(dialect, query)
    ascending = query.after is not None and query.before is None
    if query.before is not None:
        where.append(f"e.id < {mark}")
        params.append(query.before)
    if query.after is not None:
        where.append(f"e.id > {mark}")
        params.append(query.after)
    order = "ASC" if ascending else "DESC"
    if query.task_state:
        # Driven by the (state, event_id) index: stops after one page however rare the state.
        sql = (
            f"SELECT t.event_id FROM tasks t JOIN events e ON e.id = t.event_id "
            f"WHERE t.state = {mark}"
            + "".join(f" AND {clause}" for clause in where)
            + f" GROUP BY t.event_id ORDER BY t.event_id {order} LIMIT {mark}"
        )
        params.insert(0, query.task_state)
    else:
        sql = "SELECT e.id FROM events e"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY e.id {order} LIMIT {mark}"
    return sql, [*params, query.limit]


def _query_filters(dialect: Dialect, query: EventQuery) -> tuple[list[str], list[Any]]:
    """SQL conditions on ``events e`` for the filters and search of ``query``."""
    mark = dialect.mark
    where: list[str] = []
    params: list[Any] = []
    if query.kind:
        where.append(f"e.kind = {mark}")
        params.append(query.kind)
    if query.event_name:
        glob = "*" in query.event_name or "?" in query.event_name
        where.append(f"e.event_name {dialect.glob} {mark}" if glob else f"e.event_name = {mark}")
        params.append(dialect.pattern(query.event_name) if glob else query.event_name)
    search = (query.search or "").strip().replace("\x00", "")
    if search:
        # Each alternative has its own index; a number matches by its start (PO2025 finds
        # PO2025000417) through a range, which an index serves, unlike LIKE. A message id is
        # found through the dedup key of a webhook ('m:' || message id), else through the
        # partial index of the other events (migration 0009), whose condition is repeated
        # word for word so that the planner sees the index applies.
        number = f"e.number{dialect.text_order}"
        terms = [
            f"({number} >= {mark} AND {number} < {mark})",
            f"e.resource_id = {mark}",
            f"(e.dedup_key = {mark} AND e.message_id = {mark})",
            f"(e.message_id = {mark} AND {OTHER_MESSAGE_ID.format(distinct=dialect.distinct)})",
        ]
        params.extend([search, search + "\U0010ffff", search, "m:" + search, search, search])
        event_id = search.removeprefix("#")
        if event_id.isdigit() and 0 < int(event_id) < 2**63:
            terms.append(f"e.id = {mark}")
            params.append(int(event_id))
        where.append("(" + " OR ".join(terms) + ")")
    return where, params


# The request log (``store/requests.py``): refused requests and failed handshakes, one row per
# aggregated group, keyed by the aggregator's row key. A row written again replaces its count,
# never adds to it; an older write arriving late never lowers it.
REQUEST_COLUMNS = "id, row_key, last_seen, first_seen, kind, status, count, record"
UPSERT_REQUEST = (
    "INSERT INTO requests (row_key, last_seen, first_seen, kind, status, count, record) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (row_key) DO UPDATE SET "
    "last_seen = excluded.last_seen, count = excluded.count, record = excluded.record "
    "WHERE excluded.count >= requests.count"
)
TRIM_REQUESTS_BY_AGE = "DELETE FROM requests WHERE last_seen < ?"
TRIM_REQUESTS_BY_COUNT = (
    "DELETE FROM requests WHERE id NOT IN "
    "(SELECT id FROM requests ORDER BY last_seen DESC, id DESC LIMIT ?)"
)
LATEST_REQUEST = "SELECT coalesce(max(id), 0), count(*) FROM requests"
# A stored event as a request: what its row says of the request (methods of webhooks only, not
# reconcile's recovered events), without reading the body itself.
EVENT_REQUEST_COLUMNS = "id, received_at, method, path, headers, length(body), body_encoding"
WEBHOOK_METHODS = "('POST', 'PUT', 'GET')"


def page_requests_query(
    dialect: Dialect, before: tuple[str, int] | None, since: str | None, limit: int
) -> tuple[str, list[Any]]:
    """One page of request rows, newest last-seen first, below ``before`` (last_seen, id)."""
    mark = dialect.mark
    where: list[str] = []
    params: list[Any] = []
    if before is not None:
        where.append(f"(last_seen < {mark} OR (last_seen = {mark} AND id < {mark}))")
        params.extend([before[0], before[0], before[1]])
    if since is not None:
        where.append(f"last_seen >= {mark}")
        params.append(since)
    sql = f"SELECT {REQUEST_COLUMNS} FROM requests"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + f" ORDER BY last_seen DESC, id DESC LIMIT {mark}", [*params, limit]


def page_event_requests_query(
    dialect: Dialect, before: int | None, since: str | None, limit: int
) -> tuple[str, list[Any]]:
    """One page of stored webhook events as requests, newest first, below id ``before``
    (the primary key serves it: no index is added to the receiver's write path)."""
    mark = dialect.mark
    where = [f"method IN {WEBHOOK_METHODS}"]
    params: list[Any] = []
    if before is not None:
        where.append(f"id < {mark}")
        params.append(before)
    if since is not None:
        where.append(f"received_at >= {mark}")
        params.append(since)
    sql = f"SELECT {EVENT_REQUEST_COLUMNS} FROM events WHERE " + " AND ".join(where)
    return sql + f" ORDER BY id DESC LIMIT {mark}", [*params, limit]


def read_events(connection: Any, dialect: Dialect, event_ids: Sequence[int]) -> list[StoredEvent]:
    """These events with their tasks, in id order, on an open connection of either backend: two
    queries per chunk, where one ``get_event`` per event would open a connection each."""
    found: list[StoredEvent] = []
    for start in range(0, len(event_ids), GET_EVENTS_CHUNK):
        clause, ids = events_by_ids_query(dialect, event_ids[start : start + GET_EVENTS_CHUNK])
        events = connection.execute(f"SELECT {EVENT_COLUMNS} FROM events {clause}", ids).fetchall()
        if not events:
            continue
        sql, params = tasks_of_events_query(dialect, [row[0] for row in events])
        tasks = tasks_by_event(connection.execute(sql, params))
        found += [stored_event(row, tasks.get(row[0], [])) for row in events]
    return sorted(found, key=lambda event: event.id)
