"""The event model against the shared samples and their EXPECTED.json."""

from __future__ import annotations

import json

import orjson
import pytest

from tcwebhook.errors import PayloadError
from tcwebhook.events import EventKind, parse_notification, parse_webhook, parse_webhook_object
from tests.helpers.paths import FIXTURES

SAMPLES = FIXTURES / "tradecloud"
EXPECTED = json.loads((SAMPLES / "EXPECTED.json").read_text())["files"]
KINDS = {
    "order-event": EventKind.ORDER,
    "single-delivery-order-event": EventKind.SINGLE_DELIVERY_ORDER,
    "order-documents-event": EventKind.ORDER_DOCUMENTS,
    "shipment-event": EventKind.SHIPMENT,
}
WEBHOOK_FILES = [name for name, spec in EXPECTED.items() if spec["payloadKey"]]


@pytest.mark.parametrize("name", WEBHOOK_FILES)
def test_sample_matches_expected(name: str) -> None:
    expected = EXPECTED[name]
    event = parse_webhook((SAMPLES / name).read_bytes())
    assert event.kind is KINDS[expected["kind"]]
    assert event.payload_key == expected["payloadKey"]
    assert event.event_name == expected["eventName"]
    assert event.message_id == expected["messageId"]
    assert event.resource_id == expected.get("orderId", expected.get("shipmentId"))
    assert event.number == expected.get("purchaseOrderNumber", expected.get("shipmentNumber"))
    changed = [line if isinstance(line, str) else line["key"] for line in expected["changedLines"]]
    assert list(event.changed_lines) == changed
    if "documents" in expected:
        got = [{"code": d.code, "objectId": d.object_id, "url": d.url} for d in event.documents]
        assert got == expected["documents"]


def test_all_webhook_samples_covered() -> None:
    assert sorted(WEBHOOK_FILES) == sorted(f"{kind}.json" for kind in KINDS)


def body(**fields: object) -> bytes:
    return orjson.dumps(fields)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "empty"),
        (b"   ", "empty"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"eventName": ', "not valid JSON"),
        (b"[1, 2]", "must be a JSON object, not an array"),
        (body(eventName="X"), "no payload key"),
        (body(eventName="X", orderEvent={}, shipment={}), "more than one payload key"),
        (body(eventName="X", orderEvent=[]), "'orderEvent' must be a JSON object"),
        (body(orderEvent={}), "'eventName' must be a non-empty string"),
        (body(eventName=7, orderEvent={}), "'eventName' must be a non-empty string"),
        (body(eventName="X", orderEvent={"lines": {}}), "'orderEvent.lines' must be an array"),
        (body(eventName="X", orderEvent={}, meta=[]), "'meta' must be a JSON object"),
        (body(eventName="X", orderEvent={}, meta={"messageId": 5}), "'meta.messageId' must be"),
        (body(eventName="X", shipment={"loadCarriers": 3}), "'shipment.loadCarriers' must be"),
        (
            body(eventName="X", orderEvent={"orderId": ["a"]}),
            "'orderEvent.orderId' must be a string",
        ),
    ],
)
def test_invalid_bodies_say_what_is_wrong(raw: bytes, message: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_webhook(raw)
    assert message in str(caught.value)
    assert caught.value.status == 400


def test_unknown_event_names_and_fields_are_kept() -> None:
    event = parse_webhook(
        body(eventName="OrderTeleportedByBuyer", orderEvent={"orderId": "o-1", "future": {"x": 1}})
    )
    assert event.event_name == "OrderTeleportedByBuyer"
    assert not event.known_event_name
    assert event.payload["future"] == {"x": 1}


def test_legacy_payload_keys() -> None:
    simple = parse_webhook(body(eventName="OrderIssuedByBuyer", simpleOrderEvent={"id": "o-2"}))
    assert simple.kind is EventKind.SINGLE_DELIVERY_ORDER
    assert simple.resource_id == "o-2"
    legacy = parse_webhook(
        body(eventName="ShipmentDespatchedBySupplier", shipmentEvent={"id": "s"})
    )
    assert legacy.kind is EventKind.SHIPMENT
    assert legacy.known_event_name


def test_meta_inside_the_event_is_found() -> None:
    event = parse_webhook_object(
        {"eventName": "OrderIssuedByBuyer", "orderEvent": {"meta": {"messageId": "inner"}}}
    )
    assert event.message_id == "inner"


def test_notification() -> None:
    event = parse_notification("shipment", " abc/1 ")
    assert event.kind is EventKind.SHIPMENT_NOTIFICATION
    assert event.resource_id == "abc/1"
    with pytest.raises(PayloadError):
        parse_notification("order", "  ")


def test_integers_beyond_64_bits_are_valid_json() -> None:
    raw = (
        b'{"eventName": "OrderIssuedByBuyer", "orderEvent": {"version": 123456789012345678901234}}'
    )
    assert parse_webhook(raw).payload["version"] > 10**23
