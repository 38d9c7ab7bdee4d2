"""recovered: a polled object → a recovered event, without a store or a network."""

from __future__ import annotations

import uuid

import orjson

from tcwebhook.changes import parse_instant
from tcwebhook.reconcile.recovered import (
    MESSAGE_ID_NAMESPACE,
    KnownState,
    is_known,
    known_state,
    read_polled,
    recovered_event,
)
from tcwebhook.reconcile.sources import ORDERS, SHIPMENTS
from tcwebhook.store import KnownObject
from tests.helpers.reconcile import order, order_webhook, shipment, stamp

NOW = "2026-01-01T00:00:00.000Z"


def no_tasks(_event: object) -> tuple[str, ...]:
    return ()


def test_read_polled_finds_the_id_and_timestamp_or_calls_it_unusable() -> None:
    polled = read_polled(ORDERS, order(1, stamp(1)))
    assert (polled.object_id, polled.last_updated_at) == ("order-0001", stamp(1))
    assert polled.usable and polled.key == "c:order:order-0001@2025-06-01T00:01:00.000000Z"
    assert polled.instant == parse_instant(stamp(1))

    legacy = shipment(2, stamp(2))
    legacy["meta"] = {"lastChangedAt": stamp(3)}  # the older shipment name
    assert read_polled(SHIPMENTS, legacy).last_updated_at == stamp(3)

    without_id = order(3, stamp(1))
    del without_id["id"]
    unreadable = order(4, "yesterday")
    flag_id = dict(order(5, stamp(1)), id=True)
    for obj in (without_id, unreadable, flag_id):
        assert not read_polled(ORDERS, obj).usable


def test_an_unknown_object_becomes_a_webhook_shaped_event_with_every_line() -> None:
    obj = order(1, stamp(1), changed_line=1)
    polled = read_polled(ORDERS, obj)
    event = recovered_event(ORDERS, polled, KnownState(), lambda _e: ("erp",), NOW)
    assert (event.kind, event.method, event.path) == (
        "order_recovered",
        "POLL",
        "/" + ORDERS.endpoint,
    )
    assert event.changed_lines == ("0001", "0002", "0003")
    assert event.dedup_key == event.change_key == polled.key
    assert event.message_id == str(uuid.uuid5(MESSAGE_ID_NAMESPACE, polled.key or ""))
    assert event.tasks == ("erp",) and event.received_at == NOW
    body = orjson.loads(event.body)
    assert body["orderEvent"] == obj
    assert body["meta"]["messageId"] == event.message_id
    assert body["meta"]["createdDateTime"] == NOW
    # The same change on another run: the same id, so a rerun deduplicates.
    again = recovered_event(ORDERS, read_polled(ORDERS, obj), KnownState(), no_tasks, "later")
    assert again.message_id == event.message_id


def test_decimal_numbers_are_written_back_digit_for_digit() -> None:
    from decimal import Decimal

    obj = order(1, stamp(1))
    obj["lines"][0]["price"] = Decimal("12.3400")
    event = recovered_event(ORDERS, read_polled(ORDERS, obj), KnownState(), no_tasks, NOW)
    assert b'"price":12.3400' in event.body


def test_known_by_a_webhook_as_new_or_newer_and_only_later_lines_changed() -> None:
    webhook = order(7, stamp(5), changed_line=2)
    known = KnownObject(
        "order-0007",
        change_key=read_polled(ORDERS, webhook).key,
        change_kind="order",
        change_body=order_webhook(webhook),
    )
    state = known_state(ORDERS, known)
    assert state.instant == parse_instant(stamp(5)) and state.full_object is None
    same = read_polled(ORDERS, order(7, stamp(5)))
    older = read_polled(ORDERS, order(7, stamp(4)))
    assert is_known(ORDERS, same.data, same.instant, state)
    assert is_known(ORDERS, older.data, older.instant, state)
    newer = read_polled(ORDERS, order(7, stamp(9), changed_line=0))
    assert not is_known(ORDERS, newer.data, newer.instant, state)
    event = recovered_event(ORDERS, newer, state, no_tasks, NOW)
    assert event.changed_lines == ("0001",)


def test_a_recovered_whole_object_is_compared_line_by_line() -> None:
    first = order(1, stamp(1), changed_line=1)
    stored = recovered_event(ORDERS, read_polled(ORDERS, first), KnownState(), no_tasks, NOW)
    known = KnownObject(
        "order-0001",
        change_key=stored.change_key,
        change_kind="order_recovered",
        change_body=stored.body,
    )
    state = known_state(ORDERS, known)
    assert state.full_object == first
    newer = order(1, stamp(5), changed_line=0)
    newer["lines"][1]["lastUpdatedAt"] = stamp(1)
    event = recovered_event(ORDERS, read_polled(ORDERS, newer), state, no_tasks, NOW)
    assert event.changed_lines == ("0001",)


def test_version_decides_only_without_a_timestamp() -> None:
    state = KnownState(instant=None, version=3)
    undated = order(1, stamp(1))
    del undated["lastUpdatedAt"]
    undated["version"] = 3
    assert is_known(ORDERS, undated, None, state)
    undated["version"] = 4
    assert not is_known(ORDERS, undated, None, state)
    # With both timestamps the instant decides, even when the version did not grow.
    dated = dict(order(1, stamp(9)), version=1)
    later = KnownState(instant=parse_instant(stamp(1)), version=3)
    assert not is_known(ORDERS, dated, parse_instant(stamp(9)), later)


def test_a_shipment_known_from_its_fetched_object() -> None:
    fetched = shipment(4, stamp(4))
    known = KnownObject("shipment-0004", fetched=orjson.dumps(fetched))
    state = known_state(SHIPMENTS, known)
    assert state.instant == parse_instant(stamp(4)) and state.full_object == fetched
    polled = read_polled(SHIPMENTS, shipment(4, stamp(4)))
    assert is_known(SHIPMENTS, polled.data, polled.instant, state)
