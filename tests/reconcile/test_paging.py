"""Paging while Tradecloud changes, repeats or overfills its answers: the cursor never moves past
an object that was not stored, a lie ends the run unfinished (exit 1), and the next run recovers
what it missed. Each scenario was reproduced against the offset paging this replaced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tcwebhook.changes import parse_instant
from tcwebhook.delivery.status import outbox_status
from tcwebhook.reconcile import reconcile
from tcwebhook.store import Store
from tests.helpers.fake_tradecloud import (
    FakeTradecloud,
    padded_with_repeats,
    page_cursor,
    repeat_answer,
    with_objects,
)
from tests.helpers.outbox import open_for
from tests.helpers.reconcile import T, order, put, settings_for, stamp

SINCE = parse_instant(T)
ENDPOINT = "order-search/poll"


def stored_order_ids(store: Store) -> set[str]:
    events = store.list_events(limit=10_000, kind="order_recovered")
    return {event.resource_id for event in events}


def orders(count: int) -> list[dict[str, Any]]:
    return [order(n, stamp(n + 1)) for n in range(count)]


async def run(settings: Any, store: Store, **options: Any) -> Any:
    return await reconcile(settings, store, shipments=False, **options)


async def test_an_order_changed_while_paging_is_not_skipped(
    tmp_path: Path, fake_api: FakeTradecloud, ca_file: Path, stores: list
) -> None:
    settings = settings_for(tmp_path, fake_api, ca_file)
    put(fake_api, *orders(250))
    moved = order(10, stamp(5000))  # already read on page 1, changed while page 2 is read

    def change_order_10(number: int) -> None:
        if number == 2:
            put(fake_api, moved)

    fake_api.before_poll = change_order_10
    store = open_for(settings, stores)
    report = await run(settings, store, since=SINCE)

    assert report.ok, report.error
    assert stored_order_ids(store) == {f"order-{n:04d}" for n in range(250)}
    assert report.endpoints[0].polled == 251  # 250 orders and order 10's second change
    assert store.reconcile_cursor(ENDPOINT) == stamp(5000)
    assert all(call.body["limit"] <= 100 for call in fake_api.routes("order-poll"))
    again = await run(settings, store)
    assert again.ok and again.polled == 0 and again.recovered == []


async def test_data_changing_during_every_run_still_makes_progress(
    tmp_path: Path, fake_api: FakeTradecloud, ca_file: Path, stores: list
) -> None:
    settings = settings_for(tmp_path, fake_api, ca_file)
    put(fake_api, *orders(250))
    churn = iter(range(10_000, 20_000))

    def an_early_order_changes_before_every_page(number: int) -> None:
        put(fake_api, order(number % 7, stamp(next(churn))))

    fake_api.before_poll = an_early_order_changes_before_every_page
    store = open_for(settings, stores)
    cursors = []
    for since in (SINCE, None):
        report = await run(settings, store, since=since)
        assert report.ok, report.error
        cursors.append(parse_instant(store.reconcile_cursor(ENDPOINT)))
    assert stored_order_ids(store) == {f"order-{n:04d}" for n in range(250)}
    assert SINCE is not None and SINCE < cursors[0] < cursors[1]


async def test_a_page_repeating_an_earlier_one_ends_unfinished_and_the_next_run_recovers(
    tmp_path: Path, fake_api: FakeTradecloud, ca_file: Path, stores: list
) -> None:
    settings = settings_for(tmp_path, fake_api, ca_file)
    put(fake_api, *orders(250))
    fake_api.poll_lie = repeat_answer(fake_api, at=3, of=1)
    store = open_for(settings, stores)
    report = await run(settings, store, since=SINCE)

    assert not report.ok and report.error_exit_code == 1
    assert "objects older than" in (report.error or "") and "cursor" in (report.error or "")
    assert "\n" not in (report.error or "")
    assert store.reconcile_cursor(ENDPOINT) is None
    assert not report.endpoints[0].complete

    fake_api.poll_lie = None
    again = await run(settings, store, since=SINCE)
    assert again.ok, again.error
    assert stored_order_ids(store) == {f"order-{n:04d}" for n in range(250)}


async def test_a_page_with_more_objects_than_the_limit_ends_unfinished(
    tmp_path: Path, fake_api: FakeTradecloud, ca_file: Path, stores: list
) -> None:
    settings = settings_for(tmp_path, fake_api, ca_file)
    put(fake_api, *orders(250))
    fake_api.poll_lie = padded_with_repeats(4)
    store = open_for(settings, stores)
    report = await run(settings, store, since=SINCE)

    assert not report.ok and report.error_exit_code == 1
    assert "104 objects for a limit of 100" in (report.error or "")
    assert store.reconcile_cursor(ENDPOINT) is None

    fake_api.poll_lie = None
    again = await run(settings, store, since=SINCE)
    assert again.ok, again.error
    assert stored_order_ids(store) == {f"order-{n:04d}" for n in range(250)}


async def test_a_page_level_cursor_in_the_future_is_not_taken(
    tmp_path: Path, fake_api: FakeTradecloud, ca_file: Path, stores: list
) -> None:
    settings = settings_for(tmp_path, fake_api, ca_file)
    put(fake_api, order(1, stamp(1)), order(2, stamp(2)))
    fake_api.poll_lie = page_cursor("2030-01-01T00:00:00.000Z")
    store = open_for(settings, stores)
    report = await run(settings, store, since=SINCE)
    assert report.ok, report.error
    assert store.reconcile_cursor(ENDPOINT) == stamp(2)  # the newest object read


async def test_a_future_page_cursor_with_only_an_unusable_object_keeps_the_cursor(
    tmp_path: Path, fake_api: FakeTradecloud, ca_file: Path, stores: list
) -> None:
    settings = settings_for(tmp_path, fake_api, ca_file)
    nameless = order(1, stamp(1))
    del nameless["id"]
    future = page_cursor("2030-01-01T00:00:00.000Z")
    fake_api.poll_lie = lambda number, answer: future(
        number, with_objects(nameless)(number, answer)
    )
    store = open_for(settings, stores)
    report = await run(settings, store, since=SINCE)

    assert not report.ok and report.error_exit_code == 1
    assert "1 object" in (report.error or "") and "no id" in (report.error or "")
    assert report.endpoints[0].unusable == 1 and report.to_json()["unusable"] == 1
    assert store.reconcile_cursor(ENDPOINT) == T  # where the first run started, not 2030
    status = outbox_status(store, 3600, 300)
    assert status["reconcile"]["unusable"] == 1 and not status["healthy"]

    fake_api.poll_lie = None
    put(fake_api, order(5, stamp(5)))
    later = await run(settings, store)
    assert later.ok and stored_order_ids(store) == {"order-0005"}


async def test_an_unusable_object_is_reported_once_and_does_not_hold_the_cursor(
    tmp_path: Path, fake_api: FakeTradecloud, ca_file: Path, stores: list
) -> None:
    settings = settings_for(tmp_path, fake_api, ca_file)
    put(fake_api, *orders(3))
    undated = order(9, stamp(1))
    del undated["lastUpdatedAt"]
    fake_api.poll_lie = with_objects(undated)
    store = open_for(settings, stores)
    report = await run(settings, store, since=SINCE)

    assert not report.ok and report.error_exit_code == 1 and report.endpoints[0].complete
    assert stored_order_ids(store) == {"order-0000", "order-0001", "order-0002"}
    assert store.reconcile_cursor(ENDPOINT) == stamp(3)  # past it: it could never be read
    assert store.last_reconcile_run()["unusable"] == 1

    next_run = await run(settings, store)  # not seen again: no permanent failure
    assert next_run.ok, next_run.error


async def test_a_tie_of_more_than_a_page_that_changes_while_paged_is_not_skipped(
    tmp_path: Path, fake_api: FakeTradecloud, ca_file: Path, stores: list
) -> None:
    settings = settings_for(tmp_path, fake_api, ca_file)
    tie = [order(n, stamp(1)) for n in range(150)]  # one bulk change, one instant
    put(fake_api, *tie)

    def an_order_of_page_1_changes(number: int) -> None:
        if number == 2:
            put(fake_api, order(3, stamp(2)))

    fake_api.before_poll = an_order_of_page_1_changes
    store = open_for(settings, stores)
    report = await run(settings, store, since=SINCE)

    # No instant to step from: offsets, under which order 100 slid back onto page 1 when
    # order 3 moved to the end. Seeing order 3 again says so: unfinished, cursor kept.
    assert not report.ok and "by offset" in (report.error or "")
    assert "order-0100" not in stored_order_ids(store)
    assert store.reconcile_cursor(ENDPOINT) is None
    fake_api.before_poll = None
    again = await run(settings, store, since=SINCE)
    assert again.ok, again.error
    assert stored_order_ids(store) == {f"order-{n:04d}" for n in range(150)}


async def test_objects_sharing_an_instant_across_a_page_boundary_are_all_read(
    tmp_path: Path, fake_api: FakeTradecloud, ca_file: Path, stores: list
) -> None:
    settings = settings_for(tmp_path, fake_api, ca_file)
    put(fake_api, *orders(150))
    put(fake_api, *(order(n, stamp(96)) for n in range(95, 105)))  # one instant, pages 1 and 2
    store = open_for(settings, stores)
    report = await run(settings, store, since=SINCE)
    assert report.ok, report.error
    assert stored_order_ids(store) == {f"order-{n:04d}" for n in range(150)}
    assert report.endpoints[0].polled == 150  # the overlap is read, not counted twice


async def test_answers_not_oldest_first_are_paged_by_offset_and_checked(
    tmp_path: Path, fake_api: FakeTradecloud, ca_file: Path, stores: list
) -> None:
    import hashlib

    settings = settings_for(tmp_path, fake_api, ca_file)
    put(fake_api, *orders(250))
    fake_api.poll_order = lambda obj: hashlib.sha256(obj["id"].encode()).hexdigest()
    store = open_for(settings, stores)
    report = await run(settings, store, since=SINCE)
    assert report.ok, report.error
    assert stored_order_ids(store) == {f"order-{n:04d}" for n in range(250)}
    assert store.reconcile_cursor(ENDPOINT) == stamp(250)
    asked = [(c.body["offset"], c.body["filters"]) for c in fake_api.routes("order-poll")]
    assert asked == [(offset, {"lastUpdatedAfter": T}) for offset in (0, 100, 200)]
