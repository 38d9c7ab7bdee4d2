"""A recovered event as the webhook Tradecloud would have sent for its change.

``tcwebhook reconcile`` stores a change no webhook delivered as ``{payload key: the polled
object, "meta": {...}}``: no ``eventName``, since the poll does not say which event it was
(docs/reconcile.md). A receiver refuses that body. Tradecloud sends an object again, whole and
as it is now, as a *resent* event (``OrderResentByBuyer``, ``ShipmentResentByBuyer``,
docs/tradecloud.md#event-names); so replay sends the recovered object as that event: the same
payload key and ``meta`` (so its ``messageId`` and change stay the same), every line, and for an
order the API's ``id`` as the event's ``orderId`` (docs/tradecloud.md#orders). ``--set
eventName=...`` picks another name. Pure: bytes in, bytes out, numbers kept digit for digit.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson

from tcwebhook.errors import ReplaySourceError
from tcwebhook.protocol import PAYLOAD_KEYS, EventKind, Resource

# ``meta.source.origin`` of what reconcile stores (docs/reconcile.md).
RECOVERED_ORIGIN = "tcwebhook reconcile"
RECOVERED_KINDS = frozenset({EventKind.ORDER_RECOVERED.value, EventKind.SHIPMENT_RECOVERED.value})
RESENT_EVENT_NAMES: dict[Resource, str] = {
    "order": "OrderResentByBuyer",
    "shipment": "ShipmentResentByBuyer",
}


def is_recovered(body: dict[str, Any]) -> bool:
    """A body as reconcile stores it: no event name, and reconcile's origin in its meta."""
    meta = body.get("meta")
    source = meta.get("source") if isinstance(meta, dict) else None
    origin = source.get("origin") if isinstance(source, dict) else None
    return "eventName" not in body and origin == RECOVERED_ORIGIN


def as_webhook(raw: bytes, where: str) -> bytes:
    """The webhook body Tradecloud would have sent for the recovered event ``raw``."""
    try:
        # Decimal keeps quantities and prices exactly as stored (docs/tradecloud.md#orders).
        body = json.loads(raw, parse_float=Decimal, parse_int=Decimal)
    except (ValueError, RecursionError):
        raise ReplaySourceError(f"{where}: the recovered event's body is not JSON") from None
    keys = [key for key in PAYLOAD_KEYS if isinstance(body, dict) and key in body]
    if len(keys) != 1 or not isinstance(body[keys[0]], dict):
        raise ReplaySourceError(
            f"{where}: a recovered event holds one polled order or shipment, and this one "
            "does not; run 'tcwebhook events show' on it to see what it holds"
        )
    key = keys[0]
    resource = PAYLOAD_KEYS[key].resource
    payload = body[key]
    if resource == "order":
        payload = _with_order_id(payload)
    webhook = {"eventName": RESENT_EVENT_NAMES[resource], key: payload}
    if "meta" in body:
        webhook["meta"] = body["meta"]
    return orjson.dumps(webhook, default=_exact_number)


def _with_order_id(order: dict[str, Any]) -> dict[str, Any]:
    """The API object's ``id`` as the event header's ``orderId``, in its place."""
    if "orderId" in order or "id" not in order:
        return order
    return {("orderId" if name == "id" else name): value for name, value in order.items()}


def _exact_number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))
    raise TypeError(f"cannot serialise {type(value).__name__}")
