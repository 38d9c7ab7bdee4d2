"""A polled object → a recovered event: comparing it with what the store knows, and shaping it.

Pure: no store, no network, no clock (the caller passes ``now``). What the store holds about an
object arrives as a ``KnownObject``; what comes out is a ``NewEvent`` ready to append, or the
verdict that the change is known already.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from tcwebhook import changes
from tcwebhook.events import WebhookEvent, change_key
from tcwebhook.protocol import PAYLOAD_KEYS
from tcwebhook.reconcile.sources import PollSource
from tcwebhook.store import KnownObject, NewEvent

# Derived message ids: uuid5 of the change key in this namespace, the same on every run.
MESSAGE_ID_NAMESPACE = uuid.UUID("5f0f3d2c-8c1e-4f8a-9a53-7e2b1c6d9e40")

Router = Callable[[WebhookEvent], tuple[str, ...]]


@dataclass(frozen=True)
class PolledObject:
    """One object of a poll answer, with what identifies its change (None when unreadable)."""

    data: dict[str, Any]
    object_id: str | None
    last_updated_at: str | None  # as Tradecloud wrote it
    instant: datetime | None
    key: str | None  # the change key; None makes the object unusable

    @property
    def usable(self) -> bool:
        return self.key is not None


def read_polled(source: PollSource, obj: dict[str, Any]) -> PolledObject:
    """The id, timestamp and change key of a polled object."""
    object_id = object_id_of(obj)
    stamp = last_updated_at_of(source, obj)
    key = change_key(source.resource, object_id, stamp) if object_id and stamp else None
    instant = changes.parse_instant(stamp) if stamp else None
    return PolledObject(obj, object_id, stamp, instant, key)


@dataclass(frozen=True)
class KnownState:
    """The newest state of one object the store holds, from any of its events."""

    instant: datetime | None = None
    version: int | None = None
    full_object: dict[str, Any] | None = None  # a whole object as new as ``instant``


def known_state(source: PollSource, known: KnownObject) -> KnownState:
    """The newest change the store holds for an object: webhook, fetched or recovered."""
    candidates: list[tuple[datetime | None, int | None, dict[str, Any] | None]] = []
    if known.change_key is not None:
        payload = _payload(known.change_body)
        instant = changes.parse_instant(known.change_key.rsplit("@", 1)[1])
        # A recovered event holds the whole polled object; a webhook only the affected lines.
        whole = payload if (known.change_kind or "").endswith("_recovered") else None
        candidates.append((instant, _version(payload), whole))
    if known.legacy_body is not None:  # stored before change keys existed
        payload = _payload(known.legacy_body)
        instant = _object_instant(source, payload) if payload else None
        candidates.append((instant, _version(payload), None))
    if known.fetched is not None:
        fetched = _json(known.fetched)
        if fetched is not None:
            candidates.append((_object_instant(source, fetched), _version(fetched), fetched))
    instants = [instant for instant, _, _ in candidates if instant is not None]
    versions = [version for _, version, _ in candidates if version is not None]
    newest = max(instants, default=None)
    wholes = [whole for instant, _, whole in candidates if whole is not None and instant == newest]
    return KnownState(newest, max(versions, default=None), wholes[0] if wholes else None)


def is_known(
    source: PollSource, obj: dict[str, Any], polled_at: datetime | None, known: KnownState
) -> bool:
    """Known when the store holds a change as new; the order ``version`` decides only when a
    timestamp is missing (it does not grow with every change, lastUpdatedAt does)."""
    if polled_at is not None and known.instant is not None:
        return known.instant >= polled_at
    version = _version(obj)
    if source.resource == "order" and version is not None and known.version is not None:
        return known.version >= version
    return False


def changed_lines(source: PollSource, obj: dict[str, Any], known: KnownState) -> tuple[str, ...]:
    """Lines changed since the newest state we have: against that whole object when we have
    one, else updated after its instant; every line when we know nothing of the object."""
    if source.resource == "order":
        if known.full_object is None and known.instant is None:
            return tuple(changes.order_line_key(line) for line in _lines(obj))
        result = changes.order_line_changes(obj, since=known.instant, previous=known.full_object)
        picked = {id(line) for line in result.changed + result.unknown}
        return tuple(changes.order_line_key(line) for line in _lines(obj) if id(line) in picked)
    if known.instant is None:
        return tuple(item.key for item in changes.shipment_lines(obj))
    shipment = changes.shipment_line_changes(obj, since=known.instant)
    picked = {id(item.line) for item in shipment.changed + shipment.unknown}
    return tuple(item.key for item in changes.shipment_lines(obj) if id(item.line) in picked)


def recovered_event(
    source: PollSource,
    polled: PolledObject,
    known: KnownState,
    route: Router,
    now: str,
) -> NewEvent:
    """The event a webhook would have brought for a usable polled object, with its tasks."""
    assert polled.object_id is not None and polled.key is not None
    obj, key = polled.data, polled.key
    message_id = str(uuid.uuid5(MESSAGE_ID_NAMESPACE, key))
    number = number_of(source, obj)
    lines = changed_lines(source, obj, known)
    # Shaped like the webhook, so a consumer of webhook payloads reads it the same way; the
    # object is whole (every line), and changed_lines says which lines changed.
    body = {
        source.payload_key: obj,
        "meta": {
            "messageId": message_id,
            "createdDateTime": now,
            "source": {"origin": "tcwebhook reconcile", "endpoint": source.endpoint},
        },
    }
    event = WebhookEvent(
        source.recovered_kind,
        None,
        message_id,
        polled.object_id,
        number,
        source.payload_key,
        None,
        lines,
        (),
        polled.last_updated_at,
    )
    return NewEvent(
        received_at=now,
        kind=source.recovered_kind.value,
        event_name=None,
        message_id=message_id,
        dedup_key=key,
        resource_id=polled.object_id,
        number=number,
        changed_lines=lines,
        method="POLL",
        path="/" + source.endpoint,
        headers={},
        body=orjson.dumps(body, default=_exact_number),
        tasks=route(event),
        change_key=key,
    )


# ------------------------------------------------------------------------------------------
# Reading objects


def object_id_of(obj: dict[str, Any]) -> str | None:
    value = obj.get("id", obj.get("orderId"))
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None


def last_updated_at_of(source: PollSource, obj: dict[str, Any]) -> str | None:
    """The object's own timestamp as sent: the order header, the shipment's meta."""
    places: list[Any] = [obj, obj.get("meta")]
    if source.resource == "shipment":
        places.reverse()
    for place in places:
        if isinstance(place, dict):
            for name in ("lastUpdatedAt", "lastChangedAt"):
                value = place.get(name)
                if isinstance(value, str) and changes.parse_instant(value) is not None:
                    return value
    return None


def number_of(source: PollSource, obj: dict[str, Any]) -> str | None:
    part, name = (
        ("buyerOrder", "purchaseOrderNumber")
        if source.resource == "order"
        else ("supplierShipment", "shipmentNumber")
    )
    holder = obj.get(part)
    value = holder.get(name) if isinstance(holder, dict) else None
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None


def _exact_number(value: Any) -> Any:
    # The client parses numbers as Decimal: write them back digit for digit.
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _json(raw: bytes | None) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _payload(body: bytes | None) -> dict[str, Any] | None:
    """The object inside a stored webhook (or recovered) body."""
    data = _json(body)
    if data is None:
        return None
    for key in PAYLOAD_KEYS:
        if isinstance(data.get(key), dict):
            payload: dict[str, Any] = data[key]
            return payload
    return None


def _object_instant(source: PollSource, obj: dict[str, Any]) -> datetime | None:
    if source.resource == "order":
        return changes.order_reference(obj)
    return changes.shipment_reference(obj)


def _version(obj: dict[str, Any] | None) -> int | None:
    value = obj.get("version") if obj else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _lines(obj: dict[str, Any]) -> list[dict[str, Any]]:
    lines = obj.get("lines")
    return [line for line in lines if isinstance(line, dict)] if isinstance(lines, list) else []
