"""Editing a body before it is sent (``--set``, ``--fresh-ids``), and reading what it is about."""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from tcwebhook.errors import ReplaySourceError
from tcwebhook.protocol import ORDER_PAYLOAD_KEYS, SHIPMENT_PAYLOAD_KEYS, Resource


def parse_assignment(text: str) -> tuple[str, Any]:
    """``PATH=VALUE`` from ``--set``: VALUE is JSON when it parses as JSON, else a string."""
    path, sep, raw = text.partition("=")
    path = path.strip()
    if not sep or not path or any(not part for part in path.split(".")):
        raise ReplaySourceError(
            f"--set {text!r}: expected PATH=VALUE with a dotted path, "
            "e.g. --set eventName=OrderLinesRejectedBySupplier"
        )
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = raw
    return path, value


def apply_assignment(body: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted path; numeric parts index arrays, missing objects are created."""
    node: Any = body
    parts = path.split(".")
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ReplaySourceError(
                    f"--set {path}: '{where}' is not an index of an array of {len(node)}"
                )
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                if not isinstance(node.get(part), dict | list):
                    node[part] = {}
                node = node[part]
        else:
            raise ReplaySourceError(f"--set {path}: '{where}' is inside a value, not an object")


def refresh_message_id(body: dict[str, Any]) -> str:
    """Give the body a new ``meta.messageId`` (top level, and inside the event if it has one)."""
    message_id = str(uuid.uuid4())
    meta = body.get("meta")
    if not isinstance(meta, dict):
        meta = body["meta"] = {}
    meta["messageId"] = message_id
    for key in ORDER_PAYLOAD_KEYS + SHIPMENT_PAYLOAD_KEYS:
        payload = body.get(key)
        if isinstance(payload, dict) and isinstance(payload.get("meta"), dict):
            payload["meta"]["messageId"] = message_id
    return message_id


def message_id_of(body: dict[str, Any]) -> str | None:
    meta = body.get("meta")
    value = meta.get("messageId") if isinstance(meta, dict) else None
    return value if isinstance(value, str) else None


def resource_of(body: dict[str, Any]) -> tuple[Resource, str | None]:
    """Order or shipment, and the payload key (None for a full API object)."""
    for key in ORDER_PAYLOAD_KEYS:
        if key in body:
            return "order", key
    for key in SHIPMENT_PAYLOAD_KEYS:
        if key in body:
            return "shipment", key
    if "buyerOrder" in body or "supplierOrder" in body:
        return "order", None
    if "supplierShipment" in body or "loadCarriers" in body or "buyerShipment" in body:
        return "shipment", None
    raise ReplaySourceError(
        "the body has no payload key (orderEvent, singleDeliveryOrderEvent, "
        "orderDocumentsEvent or shipment) and is no order or shipment either"
    )


def id_of(body: dict[str, Any]) -> str | None:
    """The Tradecloud order or shipment id a GET notification would carry."""
    _, key = resource_of(body)
    holder = body.get(key) if key else body
    if not isinstance(holder, dict):
        return None
    for name in ("orderId", "id"):
        value = holder.get(name)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)
    return None
