"""Every kind of stored event in every inspector page: the list, the event, the timeline.

A webhook of each kind, a GET notification with its fetched object, and the events reconcile
recovers, each shown with its label, its lines and their quantities and dates.
"""

from __future__ import annotations

import copy
import html
import re
from collections.abc import Callable
from dataclasses import dataclass

import orjson
import pytest
from aiohttp.test_utils import TestClient

from tcwebhook.inspector import lines as lines_module
from tcwebhook.inspector import pages
from tcwebhook.store import Store
from tests.helpers.inspector import (
    SAMPLES,
    sample,
    store_body,
    store_notification,
    store_recovered,
)

ORDER_ID = "3b8f2c1e-5d7a-4e9b-8c2f-1a6d9e4b7c30-PO2025000417"
SHIPMENT_ID = "c7a19e42-0f3b-4d6e-a5c8-92e1b7d4f615-SN20250613"
SINGLE_ORDER_ID = "0d4e8a73-1f26-4c95-b8a0-7e3f5d2c1b68-4500123987"


@dataclass(frozen=True)
class Kind:
    kind: str
    store: Callable[[Store], int]
    resource_id: str
    label: str
    shown: tuple[str, ...]  # texts of its lines or documents: keys, quantities, dates


KINDS = [
    Kind(
        "order",
        lambda store: store_body(store, sample("order-event.json")),
        ORDER_ID,
        "OrderLinesAcceptedBySupplier",
        ("0001", "120 PCE · 80 PCE", "2025-07-14 · 2025-08-11"),
    ),
    Kind(
        "single_delivery_order",
        lambda store: store_body(store, sample("single-delivery-order-event.json")),
        SINGLE_ORDER_ID,
        "OrderChangesProposedBySupplier",
        ("10", "40 PCE", "2025-06-30", "18.4 EUR"),
    ),
    Kind(
        "order_documents",
        lambda store: store_body(store, sample("order-documents-event.json")),
        ORDER_ID,
        "OrderDocumentsAttachedBySupplier",
        ("Order confirmation SO-88121.pdf",),
    ),
    Kind(
        "shipment",
        lambda store: store_body(store, sample("shipment-event.json")),
        SHIPMENT_ID,
        "ShipmentIssuedBySupplier",
        ("DA-2025-07-0091/1", "120 PCE", "PO2025000417/0001"),
    ),
    Kind(
        "order_notification",
        lambda store: store_notification(
            store, "order", ORDER_ID, (SAMPLES / "order.json").read_bytes()
        ),
        ORDER_ID,
        "GET notification",
        ("0001", "120 PCE · 80 PCE", "2025-07-14 · 2025-08-11"),
    ),
    Kind(
        "order_recovered",
        lambda store: store_recovered(store, "order", sample("order.json")),
        ORDER_ID,
        "recovered by reconcile",
        ("0001", "120 PCE · 80 PCE", "2025-07-14 · 2025-08-11"),
    ),
    Kind(
        "shipment_recovered",
        lambda store: store_recovered(store, "shipment", sample("shipment.json")),
        SHIPMENT_ID,
        "recovered by reconcile",
        ("DA-2025-07-0091/2", "250.5 MTR", "PO2025000417/0002"),
    ),
]
PAGES = ("list", "event", "timeline")


def _text(page: str) -> str:
    """The page's visible text, entities decoded: what a person reads."""
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("kind", KINDS, ids=[kind.kind for kind in KINDS])
async def test_every_kind_in_every_page(
    inspector: TestClient, store: Store, kind: Kind, page: str
) -> None:
    event_id = kind.store(store)
    path = {
        "list": "/",
        "event": f"/events/{event_id}",
        "timeline": f"/timeline/{kind.resource_id}",
    }[page]
    response = await inspector.get(path)
    body = await response.text()
    assert response.status == 200, body
    text = _text(body)
    assert kind.kind in text
    assert kind.label in text
    assert "GET poll" not in text and "GET " + kind.resource_id not in text
    if page == "list":
        assert f'href="/timeline/{kind.resource_id}"' in body
        return
    for shown in kind.shown:
        assert shown in text, (shown, page)
    assert "No order or shipment in this event" not in text


async def test_single_delivery_compares_equal_with_the_same_delivery_schedule(
    inspector: TestClient, store: Store
) -> None:
    """The same delivery, sent once as a delivery schedule and once in single-delivery mode,
    has no differing cells (each mode read where it keeps its deliveries)."""
    single = sample("single-delivery-order-event.json")
    schedule = copy.deepcopy(single)
    order = schedule.pop("singleDeliveryOrderEvent")
    order["lines"] = order["lines"][:1]
    line = order["lines"][0]
    status_line = line.pop("statusLine")
    delivery = {"date": "2025-06-30", "quantity": 40, "status": "Open"}
    line["deliverySchedule"] = [delivery]
    line["prices"] = status_line["prices"]
    line["buyerLine"]["deliverySchedule"] = [delivery]
    del line["buyerLine"]["scheduledDelivery"]
    schedule["orderEvent"] = order
    schedule["eventName"] = "OrderIssuedByBuyer"
    schedule["meta"] = {**schedule["meta"], "messageId": "schedule-first"}
    store_body(store, schedule)
    single["singleDeliveryOrderEvent"]["lines"] = single["singleDeliveryOrderEvent"]["lines"][:1]
    event_id = store_body(store, single)
    text = _text(await (await inspector.get(f"/events/{event_id}")).text())
    assert "Differences against event" in text
    assert "40 PCE" in text and "2025-06-30" in text
    assert "differ" not in text.replace("Differences", "")


async def test_a_broken_page_is_one_line_naming_route_and_type(
    inspector: TestClient,
    store: Store,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Any failure of a page: a readable answer, and one log line with the route and the
    exception's type, never the payload."""
    event_id = store_body(store, sample("order-event.json"))

    def broken(*_: object) -> None:
        raise KeyError("SECRET-PAYLOAD-VALUE")

    monkeypatch.setattr(store, "get_event", broken)
    for _ in range(3):
        response = await inspector.get(f"/events/{event_id}/raw")
        text = await response.text()
        assert response.status == 500
        assert "KeyError" in text and "Traceback" not in text
        assert "SECRET-PAYLOAD-VALUE" not in text
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "inspector" in line]
    # One line per route and interval, however often the page fails.
    assert lines == ["tcwebhook: inspector: GET /events/{event_id}/raw failed (KeyError)"], err
    assert "SECRET-PAYLOAD-VALUE" not in err


async def test_timeline_links_encode_every_id(inspector: TestClient, store: Store) -> None:
    """A Tradecloud id with ``/``, ``?``, ``#`` or ``%`` links to its own timeline."""
    body = sample("order-event.json")
    odd = "PO/2025/001?x=1#top%20"
    body["orderEvent"]["orderId"] = odd
    event_id = store_body(store, body)
    for page in ("/", f"/events/{event_id}"):
        links = re.findall(r'href="(/timeline/[^"]+)"', await (await inspector.get(page)).text())
        assert links == ["/timeline/PO%2F2025%2F001%3Fx%3D1%23top%2520"], page
        response = await inspector.get(html.unescape(links[0]))
        assert response.status == 200
        assert f"#{event_id}" in _text(await response.text())


async def test_a_large_event_is_shown_in_part(inspector: TestClient, store: Store) -> None:
    """An order of 500 lines: 200 rows (the changed ones among them), part of the body as
    text, and the raw download for the rest."""
    body = sample("order-event.json")
    line = body["orderEvent"]["lines"][0]
    lines = []
    for position in range(500):
        copy_ = orjson.loads(orjson.dumps(line))
        copy_["buyerLine"]["position"] = f"{position:04d}"
        lines.append(copy_)
    body["orderEvent"]["lines"] = lines
    raw = orjson.dumps(body)
    assert len(raw) > pages.TEXT_LIMIT
    event_id = store_body(store, raw)
    page = await (await inspector.get(f"/events/{event_id}")).text()
    assert page.count('<td class="key">') == lines_module.MAX_ROWS
    assert "300 more rows are not shown" in page
    assert f"{len(raw) - pages.TEXT_LIMIT} more bytes are not shown" in page
    assert f'href="/events/{event_id}/raw"' in page
    assert len(page) < 2 * len(raw)


async def test_documents_events_and_order_events_compare_only_what_both_carry(
    inspector: TestClient, store: Store
) -> None:
    """A documents event carries documents, not line values: neither it nor the order event
    after it shows every cell of a line as changed."""
    store_body(store, sample("order-event.json"))
    documents_id = store_body(store, sample("order-documents-event.json"))
    again = sample("order-event.json")
    again["meta"] = {**again["meta"], "messageId": "order-again"}
    order_id = store_body(store, again)
    for event_id in (documents_id, order_id):
        text = _text(await (await inspector.get(f"/events/{event_id}")).text())
        assert "differ" not in text.replace("Differences", ""), event_id
    timeline = _text(await (await inspector.get(f"/timeline/{ORDER_ID}")).text())
    assert "differ" not in timeline.replace("Differences", "")
    assert "Order confirmation SO-88121.pdf" in timeline and "120 PCE · 80 PCE" in timeline
