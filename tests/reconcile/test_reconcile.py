"""reconcile against the fake Tradecloud API: exactly the missed changes, once each."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from tcwebhook.changes import parse_instant
from tcwebhook.delivery.status import outbox_status
from tcwebhook.delivery.worker import DeliveryWorker
from tcwebhook.errors import ConfigError
from tcwebhook.reconcile import LEASE_NAME, reconcile, reconcile_timer, run_leased
from tcwebhook.store import Store
from tests.helpers.fake_tradecloud import FakeTradecloud
from tests.helpers.outbox import FAST_RETRY, open_for, sink
from tests.helpers.reconcile import (
    T,
    order,
    order_webhook,
    put,
    settings_for,
    shipment,
    shipment_webhook,
    stamp,
)

SINCE = parse_instant(T)


def recovered_ids(report: Any) -> set[str]:
    return {change.resource_id for change in report.recovered}


def events_of(store: Store, kind: str) -> list[Any]:
    return store.list_events(limit=10_000, kind=kind)


@pytest.mark.usefixtures("store_backend")
async def test_done_when_250_orders_and_50_shipments_recovers_exactly_the_missing_ones(
    tmp_path: Path, fake_api: FakeTradecloud, ca_file: Path, receiver_for: Any
) -> None:
    settings = settings_for(tmp_path, fake_api, ca_file)
    orders = [order(n, stamp(n + 1)) for n in range(250)]
    shipments = [shipment(n, stamp(n + 0.5)) for n in range(50)]
    put(fake_api, *orders, *shipments)
    put(fake_api, order(999, "2025-05-31T23:59:59.999Z"))  # changed before T: not asked for
    receiver = await receiver_for(settings)
    received = {o["id"] for o in orders[::3]} | {s["id"] for s in shipments[::4]}
    for obj in orders[::3]:
        assert (await receiver.post("/tradecloud/order", order_webhook(obj)))["status"] == "stored"
    for obj in shipments[::4]:
        await receiver.post("/tradecloud/shipment", shipment_webhook(obj))

    first = await reconcile(settings, receiver.store, since=SINCE)

    assert first.ok, first.error
    missing = {o["id"] for o in orders + shipments} - received
    assert recovered_ids(first) == missing
    assert (first.polled, first.known) == (300, len(received))
    assert first.recovered_by_kind() == {"order_recovered": 166, "shipment_recovered": 37}
    asked = [(c.body["offset"], c.body["filters"]) for c in fake_api.routes("order-poll")]
    # 250 results: three pages of at most 100, each asking after the one before it read
    # (minus its last instant, which might go on in the next page), never by offset.
    after = [{"lastUpdatedAfter": at} for at in (T, stamp(99), stamp(198))]
    assert asked == [(0, filters) for filters in after]
    assert all(call.body["limit"] <= 100 for call in fake_api.routes("order-poll"))
    assert len(events_of(receiver.store, "order_recovered")) == 166

    again = await reconcile(settings, receiver.store, since=SINCE)  # the same window again
    assert again.ok and again.recovered == [] and again.known == 300
    from_cursor = await reconcile(settings, receiver.store)  # continuing from the cursors
    assert from_cursor.ok and from_cursor.polled == 0 and from_cursor.recovered == []
    assert len(events_of(receiver.store, "order_recovered")) == 166


async def test_recovered_event_is_a_webhook_shaped_whole_object_with_changed_lines(
    tmp_path: Path, fake_api: FakeTradecloud, ca_file: Path, stores: list
) -> None:
    settings = settings_for(tmp_path, fake_api, ca_file)
    put(fake_api, order(1, stamp(1), changed_line=1))
    store = open_for(settings, stores)
    report = await reconcile(settings, store, since=SINCE)
    (change,) = report.recovered
    assert change.changed_lines == ("0001", "0002", "0003")  # nothing known: every line
    event = store.get_event(change.event_id)
    body = orjson.loads(event.body)
    assert body["orderEvent"]["id"] == "order-0001" and len(body["orderEvent"]["lines"]) == 3
    assert body["meta"]["messageId"] == event.message_id == change.message_id
    assert (event.kind, event.number, event.method) == ("order_recovered", "PO000001", "POLL")

    # The order changes again: lines are compared with the version recovered before.
    newer = order(1, stamp(5), changed_line=0)
    newer["lines"][1]["lastUpdatedAt"] = stamp(1)
    put(fake_api, newer)
    (second,) = (await reconcile(settings, store, shipments=False)).recovered
    assert second.changed_lines == ("0001",)
    assert second.message_id != change.message_id  # a new change, a new derived id


async def test_known_by_webhook_only_changed_lines_after_it(
    tmp_path: Path, fake_api: FakeTradecloud, ca_file: Path, receiver_for: Any
) -> None:
    settings = settings_for(tmp_path, fake_api, ca_file)
    receiver = await receiver_for(settings)
    await receiver.post("/tradecloud/order", order_webhook(order(7, stamp(1), changed_line=2)))
    put(fake_api, order(7, stamp(9), changed_line=0))  # a later change was never delivered
    (change,) = (await reconcile(settings, receiver.store, since=SINCE)).recovered
    assert change.changed_lines == ("0001",)


async def test_429_in_the_middle_is_waited_out(
    tmp_path: Path, fake_api: FakeTradecloud, ca_file: Path, stores: list
) -> None:
    settings = settings_for(tmp_path, fake_api, ca_file)
    put(fake_api, *(order(n, stamp(n + 1)) for n in range(150)))
    fake_api.fail_next["order-poll"] = [0, (429, 1.0)]  # the second page is refused once
    store = open_for(settings, stores)
    report = await reconcile(settings, store, since=SINCE, shipments=False)
    assert report.ok and len(report.recovered) == 150
    calls = fake_api.routes("order-poll")
    after = [call.body["filters"]["lastUpdatedAfter"] for call in calls]
    assert after == [T, stamp(99), stamp(99)]
    assert calls[2].at - calls[1].at >= 0.95  # Retry-After honoured


async def test_api_down_ends_the_run_unfinished_without_moving_the_cursor(
    tmp_path: Path, fake_api: FakeTradecloud, ca_file: Path, stores: list
) -> None:
    from tcwebhook.tradecloud import TradecloudClient

    settings = settings_for(tmp_path, fake_api, ca_file)
    put(fake_api, *(order(n, stamp(n + 1)) for n in range(120)))
    fake_api.fail_next["order-poll"] = [0, 503, 503]
    store = open_for(settings, stores)
    client = TradecloudClient.from_settings(settings, attempts=2, backoff=0.01)
    try:
        report = await reconcile(settings, store, since=SINCE, shipments=False, client=client)
    finally:
        await client.close()
    assert not report.ok and "unavailable" in (report.error or "").lower()
    assert len(report.recovered) == 100  # the first page is stored
    assert store.reconcile_cursor("order-search/poll") is None
    assert store.last_reconcile_run()["ok"] is False


async def test_recovered_events_reach_a_directory_sink_filtered_by_kind(
    tmp_path: Path, fake_api: FakeTradecloud, ca_file: Path, stores: list
) -> None:
    outbox = tmp_path / "erp"
    settings = settings_for(
        tmp_path,
        fake_api,
        ca_file,
        sink("erp", "directory", path=outbox, kinds=("order_recovered",), retry=FAST_RETRY),
    )
    put(fake_api, order(1, stamp(1)), order(2, stamp(2)), shipment(1, stamp(3)))
    store = open_for(settings, stores)
    report = await reconcile(settings, store, since=SINCE)
    assert len(report.recovered) == 3
    await DeliveryWorker(store, settings).drain()
    files = sorted(outbox.glob("*.json"))
    assert len(files) == 2  # the shipment is not of a kind this sink takes
    bodies = [json.loads(path.read_bytes()) for path in files]
    assert {body["orderEvent"]["id"] for body in bodies} == {"order-0001", "order-0002"}


@pytest.mark.usefixtures("store_backend")
async def test_late_webhook_for_an_already_recovered_change_is_stored_once(
    tmp_path: Path, fake_api: FakeTradecloud, ca_file: Path, receiver_for: Any
) -> None:
    settings = settings_for(tmp_path, fake_api, ca_file)
    late = order(3, "2025-06-02T10:00:00.2Z")
    put(fake_api, late, shipment(3, stamp(4)))
    receiver = await receiver_for(settings)
    report = await reconcile(settings, receiver.store, since=SINCE)
    by_id = {change.resource_id: change.event_id for change in report.recovered}

    # The same instant written differently is the same change.
    late_body = order_webhook(dict(late, lastUpdatedAt="2025-06-02T11:00:00.200+01:00"))
    answer = await receiver.post("/tradecloud/order", late_body)
    assert answer == {"status": "duplicate", "id": by_id["order-0003"]}
    answer = await receiver.post("/tradecloud/shipment", shipment_webhook(shipment(3, stamp(4))))
    assert answer == {"status": "duplicate", "id": by_id["shipment-0003"]}
    assert receiver.store.count() == 2

    # A resend of a change by webhook (a new messageId) is still stored, as before.
    newer = order(3, stamp(60))
    assert (await receiver.post("/tradecloud/order", order_webhook(newer)))["status"] == "stored"
    assert (await receiver.post("/tradecloud/order", order_webhook(newer)))["status"] == "stored"


@pytest.mark.usefixtures("store_backend")
async def test_webhook_stored_between_compare_and_store_wins(
    tmp_path: Path, fake_api: FakeTradecloud, ca_file: Path, receiver_for: Any
) -> None:
    settings = settings_for(tmp_path, fake_api, ca_file)
    receiver = await receiver_for(settings)
    store = receiver.store
    racing = order(4, stamp(4))
    put(fake_api, racing)
    original = store.known_objects

    def webhook_arrives_meanwhile(*args: Any) -> Any:
        known = original(*args)
        body = order_webhook(racing)
        asyncio.run_coroutine_threadsafe(receiver.post("/tradecloud/order", body), loop).result(5)
        return known

    loop = asyncio.get_running_loop()
    store.known_objects = webhook_arrives_meanwhile  # type: ignore[method-assign]
    report = await reconcile(settings, store, since=SINCE, shipments=False)
    assert report.recovered == [] and report.known == 1
    assert [event.kind for event in store.list_events()] == ["order"]


async def test_dry_run_changes_nothing(
    tmp_path: Path, fake_api: FakeTradecloud, ca_file: Path, stores: list
) -> None:
    settings = settings_for(tmp_path, fake_api, ca_file)
    put(fake_api, order(1, stamp(1)), shipment(1, stamp(2)))
    store = open_for(settings, stores)
    report = await reconcile(settings, store, since=SINCE, dry_run=True)
    assert recovered_ids(report) == {"order-0001", "shipment-0001"}
    assert all(change.event_id is None for change in report.recovered)
    assert store.count() == 0
    assert store.reconcile_cursor("order-search/poll") is None
    assert store.last_reconcile_run() is None
    with pytest.raises(ConfigError, match="--since"):
        await reconcile(settings, store)


async def test_cursor_is_kept_per_endpoint_exactly_as_received(
    tmp_path: Path, fake_api: FakeTradecloud, ca_file: Path, stores: list
) -> None:
    settings = settings_for(tmp_path, fake_api, ca_file)
    odd = "2025-06-03T12:00:00.5+02:00"  # kept as written, never reformatted
    put(fake_api, order(1, stamp(1)), order(2, odd), shipment(1, stamp(30)))
    store = open_for(settings, stores)
    await reconcile(settings, store, since=SINCE, shipments=False)
    assert store.reconcile_cursor("order-search/poll") == odd
    assert store.reconcile_cursor("shipment/poll") is None
    with pytest.raises(ConfigError, match="shipment/poll"):
        await reconcile(settings, store)
    await reconcile(settings, store, since=SINCE, orders=False)
    assert store.reconcile_cursor("shipment/poll") == stamp(30)

    put(fake_api, order(5, "2025-06-04T00:00:00Z"))
    report = await reconcile(settings, store)
    assert recovered_ids(report) == {"order-0005"}
    assert fake_api.routes("order-poll")[-1].body["filters"]["lastUpdatedAfter"] == odd
    assert store.reconcile_cursor("order-search/poll") == "2025-06-04T00:00:00Z"
    assert store.reconcile_cursor("shipment/poll") == stamp(30)  # an empty poll keeps it


async def test_single_delivery_mode_polls_its_endpoint(
    tmp_path: Path, fake_api: FakeTradecloud, ca_file: Path, stores: list
) -> None:
    settings = settings_for(tmp_path, fake_api, ca_file, delivery_mode="single-delivery")
    put(fake_api, order(1, stamp(1)))
    store = open_for(settings, stores)
    (change,) = (await reconcile(settings, store, since=SINCE, shipments=False)).recovered
    assert fake_api.counts["order-poll-single"] == 1 and fake_api.counts["order-poll"] == 0
    assert "singleDeliveryOrderEvent" in orjson.loads(store.get_event(change.event_id).body)


async def test_until_leaves_later_changes_and_the_cursor_alone(
    tmp_path: Path, fake_api: FakeTradecloud, ca_file: Path, stores: list
) -> None:
    settings = settings_for(tmp_path, fake_api, ca_file)
    put(fake_api, order(1, stamp(1)), order(2, stamp(100)))
    store = open_for(settings, stores)
    report = await reconcile(
        settings, store, since=SINCE, until=parse_instant(stamp(50)), shipments=False
    )
    assert recovered_ids(report) == {"order-0001"}
    assert report.endpoints[0].after_until == 1
    assert store.reconcile_cursor("order-search/poll") is None


@pytest.mark.usefixtures("store_backend")
async def test_timer_runs_once_per_interval_among_instances_and_status_shows_it(
    tmp_path: Path, fake_api: FakeTradecloud, ca_file: Path, stores: list
) -> None:
    settings = settings_for(tmp_path, fake_api, ca_file, every="15m")
    put(fake_api, order(1, stamp(1)))
    store = open_for(settings, stores)
    # No cursor yet: the timer records a failed run that says what to do, and keeps going.
    failed = await run_leased(settings, store, 900, holder="host-a:1")
    assert failed is not None and "--since" in (failed.error or "")
    status = outbox_status(store, 3600, 300)
    assert status["reconcile"]["ok"] is False and not status["healthy"]

    await reconcile(settings, store, since=SINCE, dry_run=True)  # a dry run is not recorded
    store.set_reconcile_cursor("order-search/poll", T)
    store.set_reconcile_cursor("shipment/poll", T)
    assert await run_leased(settings, store, 900, holder="host-b:2") is None  # a's period
    store.release_lease(LEASE_NAME, "host-a:1")

    reports: list[Any] = []
    woken: list[bool] = []
    stopping = asyncio.Event()

    def listener(report: Any) -> None:
        reports.append(report)
        stopping.set()

    await asyncio.wait_for(
        reconcile_timer(settings, store, stopping, listener, lambda: woken.append(True)), 10
    )
    assert [len(report.recovered) for report in reports] == [1] and woken == [True]
    assert await run_leased(settings, store, 900, holder="host-c:3") is None
    status = outbox_status(store, 3600, 300)
    assert status["reconcile"]["recovered"] == 1 and status["reconcile"]["trigger"] == "serve"
    assert status["healthy"]


@pytest.mark.usefixtures("store_backend")
async def test_events_stored_before_change_keys_count_as_known(
    tmp_path: Path, fake_api: FakeTradecloud, ca_file: Path, stores: list
) -> None:
    from tests.helpers.outbox import store_body

    settings = settings_for(tmp_path, fake_api, ca_file)
    old, missed = order(1, stamp(1)), order(2, stamp(2))
    put(fake_api, old, missed)
    store = open_for(settings, stores)
    store_body(store, settings, order_webhook(old))  # as an earlier version stored it: no key
    report = await reconcile(settings, store, since=SINCE, shipments=False)
    assert recovered_ids(report) == {"order-0002"} and report.known == 1


def _lying_total(answer: dict[str, Any]) -> dict[str, Any]:
    return dict(answer, total=answer["total"] + 50)


def _same_page_forever(answer: dict[str, Any]) -> dict[str, Any]:
    return dict(answer, total=10**9)  # and offset is ignored below: every page is the first


@pytest.mark.parametrize("misbehaviour", ["lying_total", "ignores_offset"])
async def test_a_poll_that_never_reaches_its_total_ends_unfinished(
    tmp_path: Path, fake_api: FakeTradecloud, ca_file: Path, stores: list, misbehaviour: str
) -> None:
    settings = settings_for(tmp_path, fake_api, ca_file)
    put(fake_api, *(order(n, stamp(n + 1)) for n in range(120)))
    if misbehaviour == "lying_total":
        fake_api.poll_answer = _lying_total
    else:
        first: dict[str, Any] = {}
        fake_api.poll_answer = lambda answer: first.setdefault("page", _same_page_forever(answer))
    store = open_for(settings, stores)
    report = await asyncio.wait_for(
        reconcile(settings, store, since=SINCE, shipments=False), timeout=20
    )
    assert not report.ok and "poll" in (report.error or "")
    assert len(fake_api.routes("order-poll")) <= 5
    assert store.reconcile_cursor("order-search/poll") is None  # the rest is read next run
