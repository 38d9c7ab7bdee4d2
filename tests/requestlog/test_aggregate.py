"""Refused requests become few, bounded writes: merged, rate-limited, counted exactly once."""

from __future__ import annotations

import datetime as dt
import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcwebhook.requestlog import Aggregator, Limits, RequestRecord, Write, oldest_kept, to_delete

T0 = "2026-12-07T01:00:00.000Z"


def refused(client: str = "203.0.113.9", path: str = "/tradecloud/order", status: int = 401,
            time: str = T0) -> RequestRecord:  # fmt: skip
    return RequestRecord(
        time=time, method="POST", path=path, status=status, reason="wrong Bearer credentials",
        duration_ms=0.5, client=client, tradecloud="dropped",
    )  # fmt: skip


def totals(writes: list[Write]) -> dict[str, int]:
    """Each row's count as the store holds it after these upserts."""
    rows: dict[str, int] = {}
    for write in writes:
        rows[write.row_key] = write.record.count
    return rows


def test_the_first_failure_is_written_at_once() -> None:
    aggregator = Aggregator(Limits())
    writes = aggregator.offer(refused(), now=0.0)
    assert len(writes) == 1
    assert writes[0].record.count == 1
    assert writes[0].record.reason == "wrong Bearer credentials"


def test_a_flood_of_identical_failures_is_one_row_with_its_count() -> None:
    limits = Limits(window=60, update_interval=5, rate=5, burst=20)
    aggregator = Aggregator(limits)
    writes: list[Write] = []
    for index in range(10_000):  # 1000 a second for 10 s
        writes += aggregator.offer(refused(), now=index / 1000)
    writes += aggregator.flush(now=61.0)
    assert len(totals(writes)) == 1
    assert totals(writes) == {writes[0].row_key: 10_000}
    assert len(writes) <= 1 + math.ceil(10 / 5) + 1  # first, an update per interval, the close
    last = writes[-1].record
    assert (last.first_seen, last.count) == (T0, 10_000)


def test_identical_failures_after_the_window_start_a_new_row() -> None:
    aggregator = Aggregator(Limits(window=10))
    writes = aggregator.offer(refused(), now=0.0) + aggregator.offer(refused(), now=5.0)
    writes += aggregator.offer(refused(), now=12.0)
    writes += aggregator.flush(now=30.0)
    assert sorted(totals(writes).values()) == [1, 2]


def test_different_clients_paths_or_statuses_are_different_rows() -> None:
    aggregator = Aggregator(Limits())
    writes: list[Write] = []
    for record in (refused(), refused(client="198.51.100.7"), refused(path="/x"),
                   refused(status=403), refused()):  # fmt: skip
        writes += aggregator.offer(record, now=1.0)
    writes += aggregator.final()
    assert sorted(totals(writes).values()) == [1, 1, 1, 2]


def test_many_different_failures_are_capped_and_the_rest_counted() -> None:
    limits = Limits(window=60, rate=5, burst=20, max_groups=50)
    aggregator = Aggregator(limits)
    writes: list[Write] = []
    for index in range(5_000):  # a scan: every request a new path, all within one second
        writes += aggregator.offer(refused(path=f"/probe/{index}"), now=index / 5000)
        assert aggregator.held <= limits.max_groups
    assert len(writes) <= 20 + 5 * 1
    writes += aggregator.final()
    rows = totals(writes)
    assert sum(rows.values()) == 5_000
    dropped = [write.record for write in writes if write.record.kind == "dropped"]
    assert dropped and dropped[-1].count == 5_000 - limits.max_groups
    assert "write limit" in dropped[-1].reason


def test_an_open_row_is_rewritten_at_most_every_update_interval() -> None:
    aggregator = Aggregator(Limits(window=60, update_interval=5, rate=100, burst=100))
    times: list[float] = []
    for tick in range(300):  # ten a second for 30 s
        now = tick / 10
        times += [now for _ in aggregator.offer(refused(), now=now)]
    assert len(times) >= 5  # the count is seen to grow
    assert all(later - earlier >= 5 - 1e-9 for earlier, later in itertools.pairwise(times))


def test_a_clock_stepping_back_neither_reopens_nor_refills() -> None:
    aggregator = Aggregator(Limits(window=10, rate=1, burst=1))
    writes = aggregator.offer(refused(), now=100.0)
    writes += aggregator.offer(refused(client="b"), now=50.0)  # the clock stepped back
    assert len(writes) == 1  # no token was made out of the step
    writes += aggregator.final()
    assert sum(totals(writes).values()) == 2


def test_a_count_still_to_write_survives_its_failure_recurring() -> None:
    aggregator = Aggregator(Limits(window=1, update_interval=5, rate=100, burst=100))
    writes = aggregator.offer(refused(), now=0.0)  # written: 1
    writes += aggregator.offer(refused(), now=0.5)  # 2, the update not due before 5.0
    writes += aggregator.offer(refused(), now=1.5)  # a new window, a new row
    writes += aggregator.final()  # shutdown before the update was due
    assert sorted(totals(writes).values()) == [1, 2]


def test_shutdown_writes_the_counts_still_waiting_for_the_rate() -> None:
    aggregator = Aggregator(Limits(window=1, update_interval=0.1, rate=0.1, burst=1))
    writes = aggregator.offer(refused(), now=0.0)  # the only token
    writes += aggregator.offer(refused(), now=0.2)  # no token for the update
    writes += aggregator.offer(refused(client="b"), now=1.5)  # the first window closed, waiting
    assert len(writes) == 1
    writes += aggregator.final()
    assert sorted(totals(writes).values()) == [1, 2]


def test_row_keys_differ_between_aggregators() -> None:
    first = Aggregator().offer(refused(), now=0)[0].row_key
    second = Aggregator().offer(refused(), now=0)[0].row_key
    assert first != second


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError):
        Limits(rate=0)
    with pytest.raises(ValueError):
        Limits(max_rows=0)


# ---- property tests -------------------------------------------------------------------------

LIMITS = st.builds(
    Limits,
    window=st.floats(min_value=0.5, max_value=10),
    update_interval=st.floats(min_value=0.1, max_value=3),
    rate=st.floats(min_value=0.1, max_value=5),  # scarce tokens: counts wait in queues
    burst=st.integers(min_value=1, max_value=4),
    max_groups=st.integers(min_value=1, max_value=6),
)
ARRIVALS = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=3, allow_nan=False),  # seconds since the last event
        st.integers(min_value=0, max_value=7),  # which failure (8 kinds)
        st.booleans(),  # a flush instead of a request
    ),
    max_size=300,
)
Arrivals = list[tuple[float, int, bool]]


def run(limits: Limits, arrivals: Arrivals) -> tuple[Aggregator, list[tuple[float, Write]], int]:
    aggregator = Aggregator(limits)
    now, offered = 0.0, 0
    timed: list[tuple[float, Write]] = []
    for delta, kind, flush in arrivals:
        now += delta
        if flush:
            writes = aggregator.flush(now)
        else:
            offered += 1
            writes = aggregator.offer(refused(client=f"10.0.0.{kind}"), now)
            assert aggregator.held <= limits.max_groups  # memory stays bounded
        timed += [(now, write) for write in writes]
    return aggregator, timed, offered


@settings(max_examples=150, deadline=None)
@given(LIMITS, ARRIVALS)
def test_the_write_rate_bound_holds_for_any_arrival_pattern(
    limits: Limits, arrivals: Arrivals
) -> None:
    _aggregator, timed, _offered = run(limits, arrivals)
    times = [when for when, _write in timed]
    for first in range(len(times)):
        for last in range(first, len(times)):
            span = times[last] - times[first]
            assert last - first + 1 <= limits.burst + limits.rate * span + 1e-6


@settings(max_examples=150, deadline=None)
@given(LIMITS, ARRIVALS, st.booleans())
def test_every_request_is_counted_exactly_once(
    limits: Limits, arrivals: Arrivals, drain_by_time: bool
) -> None:
    aggregator, timed, offered = run(limits, arrivals)
    writes = [write for _when, write in timed]
    if drain_by_time:  # the writer keeps flushing: everything gets out within the rate
        now = sum(delta for delta, _kind, _flush in arrivals)
        step = max(limits.window, 1 / limits.rate)
        for index in range(1, 100):
            writes += aggregator.flush(now + index * step)
        assert aggregator.final() == []
    else:
        writes += aggregator.final()
    rows = totals(writes)
    assert sum(rows.values()) == offered
    by_row: dict[str, list[RequestRecord]] = {}
    for write in writes:
        by_row.setdefault(write.row_key, []).append(write.record)
    for records in by_row.values():
        counts = [record.count for record in records]
        assert counts == sorted(counts)  # a row's count only grows
        assert len({record.identity for record in records}) == 1  # never two failures in one row


# ---- retention ------------------------------------------------------------------------------

NOW = dt.datetime(2026, 12, 7, 1, 0, tzinfo=dt.UTC)


def iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def test_retention_deletes_by_age() -> None:
    limits = Limits(max_rows=100, max_age=3600)
    rows = [(1, iso(NOW - dt.timedelta(hours=2))), (2, iso(NOW - dt.timedelta(minutes=59))),
            (3, iso(NOW))]  # fmt: skip
    assert to_delete(rows, NOW, limits) == [1]
    assert oldest_kept(NOW, limits) == "2026-12-07T00:00:00.000Z"


def test_retention_keeps_the_newest_rows_by_last_seen() -> None:
    limits = Limits(max_rows=2, max_age=86400)
    # Row 1 is the oldest row but was seen last (an aggregate still growing): it stays.
    rows = [(1, iso(NOW)), (2, iso(NOW - dt.timedelta(minutes=3))),
            (3, iso(NOW - dt.timedelta(minutes=2)))]  # fmt: skip
    assert to_delete(rows, NOW, limits) == [2]


@given(
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 200_000)), unique_by=lambda r: r[0]),
    st.integers(1, 50),
    st.integers(1, 100_000),
)
def test_retention_keeps_exactly_the_newest_rows_within_the_age(
    rows: list[tuple[int, int]], max_rows: int, max_age: int
) -> None:
    limits = Limits(max_rows=max_rows, max_age=float(max_age))
    stamped = [(row_id, iso(NOW - dt.timedelta(seconds=age))) for row_id, age in rows]
    doomed = set(to_delete(stamped, NOW, limits))
    kept = [(seen, row_id) for row_id, seen in stamped if row_id not in doomed]
    assert len(kept) <= max_rows
    assert all(seen >= oldest_kept(NOW, limits) for seen, _row_id in kept)
    young = sorted(((seen, row_id) for row_id, seen in stamped
                    if seen >= oldest_kept(NOW, limits)), reverse=True)  # fmt: skip
    assert sorted(kept, reverse=True) == young[:max_rows]
