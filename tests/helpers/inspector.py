"""For inspector tests: sample bodies, events stored as the receiver would, and page tokens."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson

from tcwebhook import changes
from tcwebhook.events import parse_notification, parse_webhook
from tcwebhook.store import NewEvent, Store, utc_now
from tests.helpers.paths import SAMPLES

TOKEN = "inspector-test-token-do-not-show"


def sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads((SAMPLES / name).read_bytes())
    return data


def store_body(
    store: Store,
    body: dict[str, Any] | bytes,
    tasks: tuple[str, ...] = (),
    headers: dict[str, str] | None = None,
) -> int:
    """Store a webhook body as the receiver would (it parses and records the same fields)."""
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    event = parse_webhook(raw)
    record = NewEvent(
        received_at=utc_now(),
        kind=event.kind.value,
        event_name=event.event_name,
        message_id=event.message_id,
        dedup_key=event.message_id or hashlib.sha256(raw).hexdigest(),
        resource_id=event.resource_id,
        number=event.number,
        changed_lines=event.changed_lines,
        method="POST",
        path="/tradecloud/order" if "order" in event.kind.value else "/tradecloud/shipment",
        headers=headers or {"Content-Type": "application/json", "User-Agent": "Tradecloud"},
        body=raw,
        tasks=tasks,
    )
    return store.append_sync(record).id


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert match, "the page carries an action token"
    return match.group(1)


def store_notification(store: Store, resource: str, resource_id: str, fetched: bytes) -> int:
    """Store a GET notification as the receiver would, then its fetched object as the worker."""
    event = parse_notification("shipment" if resource == "shipment" else "order", resource_id)
    record = NewEvent(
        received_at=utc_now(),
        kind=event.kind.value,
        event_name=None,
        message_id=None,
        dedup_key=f"get:{resource_id}:{utc_now()}",
        resource_id=resource_id,
        number=None,
        changed_lines=(),
        method="GET",
        path=f"/tradecloud/{resource}?{resource}Id={resource_id}",
        headers={"User-Agent": "Tradecloud"},
        body=b"",
        tasks=(),
    )
    event_id = store.append_sync(record).id
    store.attach_fetched(event_id, fetched, [])
    return event_id


def store_recovered(store: Store, resource: str, polled: dict[str, Any]) -> int:
    """Store what ``reconcile`` stores for a change it polled: the whole object, shaped like
    the webhook of its resource, under ``append_recovered``."""
    payload_key = "shipment" if resource == "shipment" else "orderEvent"
    object_id = str(polled.get("id") or polled.get("orderId"))
    number = (
        polled.get("buyerOrder", {}).get("purchaseOrderNumber")
        if resource == "order"
        else polled.get("supplierShipment", {}).get("shipmentNumber")
    )
    key = f"c:{resource}:{object_id}@{utc_now()}"
    body = {
        payload_key: polled,
        "meta": {
            "messageId": hashlib.sha256(key.encode()).hexdigest()[:32],
            "source": {"origin": "tcwebhook reconcile", "endpoint": f"{resource}/poll"},
        },
    }
    lines = [changes.order_line_key(line) for line in polled.get("lines", [])]
    if resource == "shipment":
        lines = [found.key for found in changes.shipment_lines(polled)]
    record = NewEvent(
        received_at=utc_now(),
        kind=f"{resource}_recovered",
        event_name=None,
        message_id=body["meta"]["messageId"],
        dedup_key=key,
        resource_id=object_id,
        number=number,
        changed_lines=tuple(lines),
        method="POLL",
        path=f"/{resource}/poll",
        headers={},
        body=orjson.dumps(body),
        tasks=(),
        change_key=key,
    )
    [result] = store.append_recovered([record])
    return result.id
