"""The request log in the store, for every backend: rows ↔ records, the merged page, retention.

Refused requests and failed handshakes are rows of ``requests`` (written off the receiver's loop,
aggregated and rate-limited by ``requestlog.Aggregator``); a stored event is read as a request from
its own event row, so storing an event writes nothing more. A page merges both, newest first, with
one keyset cursor per source. No driver is imported here: a backend hands over a connection whose
``execute(sql, params)`` returns rows (sqlite3 and psycopg both do).
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from tcwebhook.requestlog import AuthPresence, Limits, RequestRecord, Write, oldest_kept
from tcwebhook.requestlog.records import bounded, stored_record
from tcwebhook.store import sql
from tcwebhook.store.sql import Dialect

MAX_PAGE = 500


class _Connection(Protocol):
    def execute(self, query: Any, params: Any = ...) -> Any: ...


def _unknown_auth(path: str) -> AuthPresence:
    return "present (other)"  # it passed authentication; the scheme is the caller's to say


@dataclass(frozen=True)
class RequestCursor:
    """Where the next page starts: below this event id, and below (seen, row_id) in requests.
    None: that source from its newest."""

    event_id: int | None = None
    seen: str | None = None
    row_id: int | None = None

    def encode(self) -> str:
        return f"{self.event_id or ''}~{self.seen or ''}~{self.row_id or ''}"

    @classmethod
    def decode(cls, text: str) -> RequestCursor:
        """The cursor ``encode`` wrote; ValueError for anything else."""
        parts = text.split("~")
        if len(parts) != 3 or (bool(parts[1]) != bool(parts[2])) or len(parts[1]) > 40:
            raise ValueError("not a request-log cursor")
        event_id = int(parts[0]) if parts[0] else None
        row_id = int(parts[2]) if parts[2] else None
        for number in (event_id, row_id):
            if number is not None and not 0 < number < 2**63:
                raise ValueError("not a request-log cursor")
        return cls(event_id, parts[1] or None, row_id)


@dataclass(frozen=True)
class RequestQuery:
    """One page of the request log, newest first.

    ``refused``: only requests that were not stored (and failed handshakes); ``since``: ISO time,
    inclusive; ``path_auth``: the ``auth`` shown for a stored request of a path (the header itself
    is never stored; the receiver's configuration says which scheme that path takes).
    """

    limit: int = 50
    refused: bool = False
    since: str | None = None
    before: RequestCursor | None = None
    path_auth: Callable[[str], AuthPresence] = field(default=_unknown_auth, compare=False)


@dataclass(frozen=True)
class RequestPage:
    records: list[RequestRecord]
    next: RequestCursor | None  # None: nothing older


# ---- writing -------------------------------------------------------------------------------


def write_row(write: Write) -> tuple[Any, ...]:
    """The values of ``UPSERT_REQUEST`` for one aggregated write."""
    record = write.record
    data = record.to_json()
    return (
        write.row_key,
        data["last_seen"],
        data["first_seen"],
        record.kind,
        record.status,
        record.count,
        orjson.dumps(data).decode(),
    )


def upsert(connection: _Connection, dialect: Dialect, writes: Sequence[Write]) -> None:
    statement = dialect.sql(sql.UPSERT_REQUEST)
    for write in writes:
        connection.execute(statement, write_row(write))


def trim(connection: _Connection, dialect: Dialect, limits: Limits, now: dt.datetime) -> int:
    """Retention: rows last seen before ``max_age``, then all but the ``max_rows`` newest."""
    by_age = connection.execute(dialect.sql(sql.TRIM_REQUESTS_BY_AGE), (oldest_kept(now, limits),))
    by_count = connection.execute(dialect.sql(sql.TRIM_REQUESTS_BY_COUNT), (limits.max_rows,))
    return max(by_age.rowcount, 0) + max(by_count.rowcount, 0)


# ---- reading -------------------------------------------------------------------------------


def page(connection: _Connection, dialect: Dialect, query: RequestQuery) -> RequestPage:
    """One page: request rows and (unless ``refused``) stored events, merged newest first."""
    limit = max(1, min(query.limit, MAX_PAGE))
    before = query.before or RequestCursor()
    seen = None if before.seen is None or before.row_id is None else (before.seen, before.row_id)
    text, params = sql.page_requests_query(dialect, seen, query.since, limit + 1)
    rows = [("r", row[2], row[0], request_from_row(row)) for row in _rows(connection, text, params)]
    events: list[tuple[str, str, int, RequestRecord]] = []
    if not query.refused:
        text, params = sql.page_event_requests_query(
            dialect, before.event_id, query.since, limit + 1
        )
        for row in _rows(connection, text, params):
            record = event_request(row, query.path_auth)
            events.append(("e", record.time, row[0], record))
    merged = list(heapq.merge(rows, events, key=lambda item: (item[1], item[0]), reverse=True))
    taken = merged[:limit]
    if len(merged) <= limit:
        return RequestPage([item[3] for item in taken], None)
    event_id, last_row = before.event_id, seen
    for source, time, row_id, _ in taken:
        if source == "e":
            event_id = row_id
        else:
            last_row = (time, row_id)
    cursor = RequestCursor(event_id, *(last_row or (None, None)))
    return RequestPage([item[3] for item in taken], cursor)


def latest(connection: _Connection, dialect: Dialect) -> tuple[int, int]:
    """(the newest request row's id, the rows' count): what a live view polls for a change."""
    row = connection.execute(dialect.sql(sql.LATEST_REQUEST)).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def request_from_row(row: Sequence[Any]) -> RequestRecord:
    """A row of ``REQUEST_COLUMNS`` as a record; an unreadable row still reads as one."""
    try:
        data = orjson.loads(row[7])
        if not isinstance(data, dict):
            raise TypeError
        return _record_from_json(data)
    except (orjson.JSONDecodeError, TypeError, ValueError):
        return RequestRecord(
            time=str(row[2]),
            method=None,
            path=None,
            status=row[5] if isinstance(row[5], int) else None,
            reason="(an unreadable request-log row)",
            duration_ms=None,
            client=None,
            tradecloud="unknown",
            count=int(row[6]) if isinstance(row[6], int) else 1,
        )


_RECORD_FIELDS = frozenset(RequestRecord.__dataclass_fields__)


def _record_from_json(data: dict[str, Any]) -> RequestRecord:
    values = {name: value for name, value in data.items() if name in _RECORD_FIELDS}
    if not isinstance(values.get("time"), str) or not isinstance(values.get("reason"), str):
        raise ValueError("a request-log row without time or reason")
    values.setdefault("tradecloud", "unknown")
    values.setdefault("duration_ms", None)
    for name in ("method", "path", "status", "client"):
        values.setdefault(name, None)
    for name, default in (("kind", "http"), ("auth", "absent"), ("count", 1)):
        if values.get(name) is None:
            values[name] = default
    return RequestRecord(**values)


def event_request(row: Sequence[Any], path_auth: Callable[[str], AuthPresence]) -> RequestRecord:
    """A row of ``EVENT_REQUEST_COLUMNS`` as the request that stored it."""
    event_id, received_at, method, path, headers_text, length, encoding = row
    headers = _headers(headers_text)
    size: int | None = int(length) if encoding is None and length is not None else None
    declared = headers.get("content-length", "")
    if size is None and declared.isdigit():
        size = int(declared)
    path = str(path)
    return stored_record(
        time=str(received_at),
        method=bounded(method, 16),
        path=path,
        event_id=int(event_id),
        content_type=_content_type(headers),
        size=size,
        auth=path_auth(path.partition("?")[0]),
    )


def _rows(connection: _Connection, text: str, params: Sequence[Any]) -> list[Sequence[Any]]:
    return list(connection.execute(text, params).fetchall())


def _content_type(headers: dict[str, str]) -> str | None:
    value = headers.get("content-type")
    return None if value is None else bounded(value, 100)


def _headers(text: Any) -> dict[str, str]:
    try:
        value = orjson.loads(text)
    except (orjson.JSONDecodeError, TypeError):
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(key).lower(): str(item)[:200] for key, item in value.items()}
