"""What a sink receives for a stored event."""

from __future__ import annotations

from typing import Any

import orjson

from tcwebhook.store import StoredEvent
from tcwebhook.store.records import embedded_json
from tcwebhook.txml import XML_CONTENT_TYPE, looks_like_xml


def media_type(event: StoredEvent) -> str:
    """The payload's own type: tXML is handed on as Tradecloud sent it, never converted."""
    return (
        XML_CONTENT_TYPE if event.body and looks_like_xml(event.body, None) else "application/json"
    )


def envelope(event: StoredEvent) -> dict[str, Any]:
    """Our metadata, the Tradecloud body and the changed lines, in one object."""
    return {
        "id": event.id,
        "received_at": event.received_at,
        "kind": event.kind,
        "event_name": event.event_name,
        "message_id": event.message_id,
        "resource_id": event.resource_id,
        "number": event.number,
        "changed_lines": list(event.changed_lines),
        "payload_type": media_type(event) if event.body else None,
        # As stored, not parsed and serialised again: any depth the receiver accepted fits;
        # a tXML body is its text.
        "payload": embedded_json(event.body),
        "fetched": embedded_json(event.fetched),
    }


def rendered_type(event: StoredEvent, content: str) -> str:
    """The media type of what ``render`` gives for ``event``."""
    return media_type(event) if content == "payload" and event.body else "application/json"


def render(event: StoredEvent, content: str) -> bytes:
    """``payload``: the body exactly as Tradecloud sent it. GET notifications have no body,
    so they always travel as an envelope."""
    if content == "payload" and event.body:
        return event.body
    return orjson.dumps(envelope(event))
