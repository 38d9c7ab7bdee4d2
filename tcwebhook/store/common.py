"""What every backend shares: the clock, the body codec, rows ↔ records, the SQL of the
queries whose text differs only in the parameter mark (``?`` or ``%s``), and how a group
commit hands each request its outcome.

No driver is imported here; the backends hand over plain rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import zstandard

from tcwebhook.errors import StoreUnavailable
from tcwebhook.store.records import AppendResult, EventQuery, NewEvent, StoredEvent, TaskRecord

TASK_COLUMNS = (
    "id, event_id, target, state, attempts, next_attempt_at, last_error, output, updated_at"
)
EVENT_COLUMNS = (
    "id, received_at, kind, event_name, message_id, resource_id, number, changed_lines, "
    "method, path, headers, body, fetched, fetched_changed_lines, fetched_at, body_encoding, "
    "dedup_key, change_key"
)
# The columns of ``event_row``, in its order.
INSERT_COLUMNS = (
    "received_at, kind, event_name, message_id, dedup_key, resource_id, number, changed_lines, "
    "method, path, headers, body, body_encoding, change_key"
)
UNFINISHED_STATES = "('pending', 'failed', 'running')"

# The status queries, the same text on every backend (no parameters).
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


def status_report(
    kinds: Sequence[Sequence[Any]],
    tasks: Sequence[Sequence[Any]],
    oldest: str | None,
    heads: Sequence[Sequence[Any]],
) -> dict[str, Any]:
    """The shape of ``status()`` from the rows of the four STATUS_ queries."""
    per_target: dict[str, dict[str, int]] = {}
    for target, state, count in tasks:
        per_target.setdefault(target, {})[state] = count
    return {
        "events": {kind: count for kind, count in kinds},
        "tasks": per_target,
        "oldest_unfinished_received_at": oldest,
        "oldest_unfinished": {  # per target: its oldest unfinished delivery
            target: {
                "event_id": event_id,
                "state": state,
                "attempts": attempts,
                "last_error": last_error,
                "received_at": received_at,
            }
            for target, event_id, state, attempts, last_error, received_at in heads
        },
    }


# ---------------------------------------------------------------------------------------------
# The clock

# (second, "YYYY-MM-DDTHH:MM:SS") of the last call, replaced as one tuple so threads never see a
# torn pair. utc_now runs for every request on the event loop; formatting a datetime each time
# cost about three times as much as reusing the second's prefix.
_SECOND_PREFIX: tuple[int, str] = (-1, "")


def utc_now() -> str:
    """The current UTC time, ISO 8601 with milliseconds and a Z (2026-11-27T21:47:32.159Z)."""
    global _SECOND_PREFIX
    ns = time.time_ns()
    second, prefix = _SECOND_PREFIX
    if ns // 1_000_000_000 != second:
        second = ns // 1_000_000_000
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _SECOND_PREFIX = (second, prefix)
    return f"{prefix}.{ns // 1_000_000 % 1000:03d}Z"


# ---------------------------------------------------------------------------------------------
# Bodies

# Bodies at least this large are stored zstd-compressed. Writing them is the store's main cost
# for large events (every page goes to the WAL, and again to the database at checkpoint); an
# order with many lines shrinks many times over, and zstd at level 1 takes ~15 us for 50 KB.
COMPRESS_FROM = 16 * 1024
ZSTD = "zstd"
_codecs = threading.local()  # zstandard's (de)compressor objects are not thread-safe


def encode_body(body: bytes) -> tuple[bytes, str | None]:
    """The bytes to store for ``body`` and their encoding (None: stored as they are)."""
    if len(body) < COMPRESS_FROM:
        return body, None
    compressor = getattr(_codecs, "compressor", None)
    if compressor is None:
        compressor = _codecs.compressor = zstandard.ZstdCompressor(level=1)
    packed = compressor.compress(body)
    if len(packed) >= len(body):
        return body, None
    return packed, ZSTD


def decode_body(stored: bytes, encoding: str | None) -> bytes:
    """The original bytes of a body stored by ``encode_body``."""
    if encoding is None:
        return bytes(stored)
    if encoding == ZSTD:
        decompressor = getattr(_codecs, "decompressor", None)
        if decompressor is None:
            decompressor = _codecs.decompressor = zstandard.ZstdDecompressor()
        return decompressor.decompress(stored)
    raise StoreUnavailable(
        f"the event store holds a body encoded as {encoding!r}, unknown to this version; "
        "upgrade tcwebhook"
    )


# ---------------------------------------------------------------------------------------------
# Rows ↔ records


def event_row(event: NewEvent) -> tuple[Any, ...]:
    """The values of ``INSERT_COLUMNS`` for ``event``."""
    body, encoding = encode_body(event.body)
    return (
        event.received_at,
        event.kind,
        event.event_name,
        event.message_id,
        event.dedup_key,
        event.resource_id,
        event.number,
        orjson.dumps(event.changed_lines).decode(),
        event.method,
        event.path,
        orjson.dumps(event.headers).decode(),
        body,
        encoding,
        event.change_key,
    )


def stored_event(row: Sequence[Any], tasks: Sequence[TaskRecord]) -> StoredEvent:
    """A row of ``EVENT_COLUMNS`` and its tasks as a StoredEvent.

    Whatever a row holds (SQLite keeps any type in any column, and rows may come from older
    versions or other tools), reading it must not fail: no event may break a reader.
    """
    fetched_lines = _json_column(row[13], list) if row[13] else None
    return StoredEvent(
        id=row[0],
        received_at=_text(row[1]) or "",
        kind=_text(row[2]) or "",
        event_name=_text(row[3]),
        message_id=_text(row[4]),
        resource_id=_text(row[5]),
        number=_text(row[6]),
        changed_lines=tuple(map(str, _json_column(row[7], list) or ())),
        method=_text(row[8]) or "",
        path=_text(row[9]) or "",
        headers=_json_column(row[10], dict) or {},
        body=decode_body(_blob(row[11]), row[15]),
        fetched=_blob(row[12]) if row[12] is not None else None,
        fetched_changed_lines=tuple(map(str, fetched_lines or ())) if row[13] else None,
        fetched_at=_text(row[14]),
        tasks=tuple(tasks),
        dedup_key=_text(row[16]),
        change_key=_text(row[17]),
    )


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _blob(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8", "replace")
    return bytes(value) if value is not None else b""


def _json_column(value: Any, expected: type) -> Any:
    """A JSON column's value if it is of the ``expected`` type, else None."""
    try:
        decoded = orjson.loads(value)
    except (orjson.JSONDecodeError, TypeError):
        return None
    return decoded if isinstance(decoded, expected) else None


# ---------------------------------------------------------------------------------------------
# Query text


@dataclass(frozen=True)
class Dialect:
    """How a backend's SQL differs in the queries built here."""

    mark: str  # the parameter placeholder
    glob: str  # the operator that matches event_name against a pattern
    pattern: Callable[[str], str]  # a shell glob as that operator's pattern
    text_order: str = ""  # appended to a text column compared by range, for bytewise order

    def sql(self, text: str) -> str:
        """``text`` written with ``?`` marks, in this dialect."""
        return text if self.mark == "?" else text.replace("?", self.mark)


def glob_to_like(pattern: str) -> str:
    """A shell glob (``Order*``, ``?``) as a LIKE pattern, with LIKE's own wildcards escaped."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


SQLITE = Dialect(mark="?", glob="GLOB", pattern=str)
POSTGRES = Dialect(mark="%s", glob="LIKE", pattern=glob_to_like, text_order=' COLLATE "C"')


# Statements whose text is the same on every backend but for the mark (``Dialect.sql``).
PREVIOUS_FETCHED = (
    "SELECT fetched FROM events WHERE resource_id = ? AND id < ? "
    "AND fetched IS NOT NULL ORDER BY id DESC LIMIT 1"
)
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
    ids = list(event_ids)[:MAX_EVENT_TASKS]
    marks = ", ".join([dialect.mark] * len(ids)) or "NULL"
    sql = f"SELECT {TASK_COLUMNS} FROM tasks WHERE event_id IN ({marks}) ORDER BY id"
    return sql, ids


def tasks_by_event(rows: Iterable[Sequence[Any]]) -> dict[int, list[TaskRecord]]:
    """Task rows (``TASK_COLUMNS``) grouped by their event id."""
    tasks: dict[int, list[TaskRecord]] = {}
    for row in rows:
        tasks.setdefault(row[1], []).append(TaskRecord(*row))
    return tasks


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
        # PO2025000417) through a range, which an index serves, unlike LIKE.
        number = f"e.number{dialect.text_order}"
        terms = [
            f"({number} >= {mark} AND {number} < {mark})",
            f"e.resource_id = {mark}",
            f"e.message_id = {mark}",
        ]
        params.extend([search, search + "\U0010ffff", search, search])
        event_id = search.removeprefix("#")
        if event_id.isdigit() and 0 < int(event_id) < 2**63:
            terms.append(f"e.id = {mark}")
            params.append(int(event_id))
        where.append("(" + " OR ".join(terms) + ")")
    return where, params


# ---------------------------------------------------------------------------------------------
# Health (/healthz)

# A failed commit counts as "cannot take events" for this long unless a later one succeeds; the
# write probe is repeated at most this often.
RECENT_FAILURE = 30.0
PROBE_EVERY = 2.0


class CommitHealth:
    """What a store's writer saw of its commits, and a cached write probe: ``problem()``."""

    def __init__(self) -> None:
        self._failure: tuple[float, str] | None = None  # (monotonic time, why)
        self._committed_at = -PROBE_EVERY  # monotonic time of the last successful commit
        self._probed: tuple[float, str | None] = (-PROBE_EVERY, None)

    def failed(self, why: str) -> None:
        self._failure = (time.monotonic(), why)

    def committed(self) -> None:
        self._failure = None
        self._committed_at = time.monotonic()

    def problem(
        self, probe: Callable[[], str | None], while_busy: Callable[[], str | None]
    ) -> str | None:
        """A commit that failed recently counts until a later one succeeds (the clients saw
        503s); while commits succeed, ``while_busy``; otherwise ``probe``, at most every
        ``PROBE_EVERY`` seconds."""
        now = time.monotonic()
        failure = self._failure
        if failure is not None and now - failure[0] < RECENT_FAILURE:
            return f"the last commit failed: {failure[1]}"
        if now - self._committed_at < PROBE_EVERY:  # busy and committing: no probe needed
            return while_busy()
        checked, found = self._probed
        if time.monotonic() - checked >= PROBE_EVERY:
            found = probe()
            self._probed = (time.monotonic(), found)
        return found


# ---------------------------------------------------------------------------------------
# Group commit: the writer thread takes up to MAX_BATCH queued (event, future, loop) items per
# transaction and then settles their futures on their event loops.

MAX_BATCH = 512


def wake_all(batch: list[Any], outcomes: Sequence[AppendResult | BaseException]) -> None:
    """Hand each request its outcome with one wake-up per event loop, not one per request:
    every ``call_soon_threadsafe`` writes to the loop's self-pipe and wakes it
    (docs/performance-notes.md#5-one-loop-wake-up-per-committed-batch)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[AppendResult], Any]]] = {}
    for (_, future, loop), outcome in zip(batch, outcomes, strict=True):
        by_loop.setdefault(loop, []).append((future, outcome))
    for loop, settled in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits for these
            loop.call_soon_threadsafe(_settle, settled)


def _settle(settled: list[tuple[asyncio.Future[AppendResult], Any]]) -> None:
    for future, outcome in settled:
        if future.done():  # the request went away (client disconnected); the row is stored
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
