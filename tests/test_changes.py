"""Change detection per docs/tradecloud.md#changed-lines, against EXPECTED.json and edge cases."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

from tcwebhook import changes
from tests.helpers.paths import FIXTURES

SAMPLES = FIXTURES / "tradecloud"
EXPECTED = json.loads((SAMPLES / "EXPECTED.json").read_text())["files"]


def load(name: str) -> dict:
    return json.loads((SAMPLES / name).read_text())


def line_entries(items: list[changes.ShipmentLine]) -> list[dict]:
    return [
        {
            "key": item.key,
            "in": item.place,
            "purchaseOrderNumber": item.line["purchaseOrderNumber"],
            "purchaseOrderLinePosition": item.line["purchaseOrderLinePosition"],
        }
        for item in items
    ]


def document_entries(items: list) -> list[dict]:
    return [
        {"side": side, "code": d["code"], "objectId": d.get("objectId"), "url": d.get("url")}
        for side, d in items
    ]


def test_order_object_against_expected() -> None:
    expected = EXPECTED["order.json"]
    order = load("order.json")
    result = changes.order_line_changes(order)
    assert [changes.order_line_key(line) for line in result.changed] == expected["changedLines"]
    assert [changes.order_line_key(line) for line in result.unchanged] == expected["unchangedLines"]
    assert result.unknown == []
    assert changes.order_reference(order) == changes.parse_instant(
        expected["referenceLastUpdatedAt"]
    )


def test_shipments_against_expected() -> None:
    for name in ("shipment.json", "shipment-event.json"):
        expected = EXPECTED[name]
        data = load(name)
        shipment = data.get("shipment", data)
        lines = changes.shipment_line_changes(shipment)
        assert line_entries(lines.changed) == expected["changedLines"], name
        assert line_entries(lines.unchanged) == expected["unchangedLines"], name
        assert line_entries(lines.unknown) == expected["unknownLines"], name
        documents = changes.shipment_document_changes(shipment)
        assert document_entries(documents.changed) == expected["changedDocuments"], name
        assert document_entries(documents.unchanged) == expected["unchangedDocuments"], name
        assert document_entries(documents.unknown) == expected["unknownDocuments"], name


def test_instants_not_strings() -> None:
    same = ["2025-06-04T14:03:11.200Z", "2025-06-04T14:03:11.2Z", "2025-06-04T15:03:11.2+01:00"]
    assert len({changes.parse_instant(value) for value in same}) == 1
    assert changes.parse_instant("2019-12-31T10:11:12") == datetime(
        2019, 12, 31, 10, 11, 12, tzinfo=UTC
    )
    nanos = changes.parse_instant("2025-06-04T14:03:11.123456789Z")
    assert nanos == datetime(2025, 6, 4, 14, 3, 11, 123456, tzinfo=UTC)
    assert changes.parse_instant("yesterday") is None
    assert changes.parse_instant(None) is None


def test_missing_timestamps_are_unknown_and_legacy_name_is_honoured() -> None:
    shipment = copy.deepcopy(load("shipment.json"))
    reference = shipment["meta"]["lastUpdatedAt"]
    loose = shipment["lines"][0]
    del loose["meta"]["lastUpdatedAt"]
    carrier_line = shipment["loadCarriers"][0]["lines"][0]
    carrier_line["meta"] = {"lastChangedAt": reference.replace("Z", "+00:00")}
    result = changes.shipment_line_changes(shipment)
    assert [item.key for item in result.unknown] == [changes.shipment_line_key(loose)]
    assert [item.key for item in result.changed] == [changes.shipment_line_key(carrier_line)]
    assert result.changed[0].carrier == changes.carrier_name(shipment["loadCarriers"][0])
    assert result.changed[0].place == "loadCarrier"


def test_order_since_and_previous_version() -> None:
    order = load("order.json")
    since = changes.order_line_changes(order, since=datetime(2000, 1, 1, tzinfo=UTC))
    assert len(since.changed) == 3
    previous = copy.deepcopy(order)
    previous["lines"][0]["lastUpdatedAt"] = "2020-01-01T00:00:00Z"
    del previous["lines"][2]
    against_previous = changes.order_line_changes(order, previous=previous)
    keys = [changes.order_line_key(line) for line in against_previous.changed]
    assert keys == ["0001", "0003"]  # 0001 moved on since then, 0003 is new


def test_order_reference_falls_back_to_newest_line() -> None:
    order = copy.deepcopy(load("order.json"))
    del order["lastUpdatedAt"]
    result = changes.order_line_changes(order)
    assert [changes.order_line_key(line) for line in result.changed] == ["0003"]


def test_split_line_without_position_is_keyed_by_id() -> None:
    assert changes.order_line_key({"id": "L-9", "buyerLine": {"position": ""}}) == "L-9"
