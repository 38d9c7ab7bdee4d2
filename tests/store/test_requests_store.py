"""The request log's table on both backends: upsert by row key, retention by age and count."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tcwebhook.requestlog import Limits, RequestRecord, Write
from tcwebhook.store import Store, open_store
from tcwebhook.store.requests import RequestQuery


@pytest.fixture
def store(tmp_path: Path, store_backend: str) -> Iterator[Store]:
    url = os.environ.get("TCWEBHOOK_STORE_URL") or f"sqlite:///{tmp_path / 'events.db'}"
    opened = open_store(url)
    yield opened
    opened.close()


def _write(key: str, seen: str, count: int = 1) -> Write:
    record = RequestRecord(
        time=seen, method="POST", path=f"/{key}", status=404, reason="no webhook at this path",
        duration_ms=1.0, client="203.0.113.1", tradecloud="dropped", count=count,
        first_seen="2026-12-01T00:00:00.000Z", last_seen=seen,
    )  # fmt: skip
    return Write(key, record)


def _rows(store: Store) -> list[RequestRecord]:
    return store.page_requests(RequestQuery(limit=500, refused=True)).records


def test_a_row_written_again_replaces_its_count_and_never_goes_back(store: Store) -> None:
    store.record_requests([_write("a", "2026-12-07T10:00:00.000Z", 3)])
    store.record_requests([_write("a", "2026-12-07T10:00:05.000Z", 7)])
    store.record_requests([_write("a", "2026-12-07T10:00:01.000Z", 4)])  # a late, older write
    [row] = _rows(store)
    assert (row.count, row.time) == (7, "2026-12-07T10:00:05.000Z")


def test_retention_keeps_the_newest_rows_within_age_and_count(store: Store) -> None:
    now = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)
    writes = [_write(f"r{index}", f"2026-12-07T11:{index:02d}:00.000Z") for index in range(20)]
    writes.append(_write("old", "2026-11-01T00:00:00.000Z"))
    store.record_requests(writes)
    deleted = store.trim_requests(Limits(max_rows=5, max_age=7 * 86400.0), now)
    kept = _rows(store)
    assert deleted == 16 and len(kept) == 5
    assert [row.path for row in kept] == [f"/r{index}" for index in range(19, 14, -1)]
