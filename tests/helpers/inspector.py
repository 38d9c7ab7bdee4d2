"""For inspector tests: sample bodies, events stored as the receiver would, and page tokens."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson

from tcwebhook.events import parse_webhook
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
