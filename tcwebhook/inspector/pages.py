"""The pages that may be large: one event and one order's or shipment's timeline.

Each is built whole from the store in a worker process (``offload``), so their cost never
falls on the receiver's loop, and each is bounded however large the events behind it: a body
beyond ``TEXT_LIMIT`` is shown in part and offered whole as a download, a table shows at most
``lines.MAX_ROWS`` rows, a timeline at most ``TIMELINE_EVENTS`` events.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tcwebhook.config import Settings
from tcwebhook.inspector.exchange import exchange
from tcwebhook.inspector.lines import event_changes, timeline_changes
from tcwebhook.inspector.render import TREE_LIMIT, pretty, render, tree
from tcwebhook.inspector.targets import curl_command, receiver_url
from tcwebhook.store import Store, StoredEvent
from tcwebhook.txml import looks_like_xml

# The body shown as text: its pretty-printed JSON up to this size, beyond it the first this
# many bytes as received (the raw download has all of it).
TEXT_LIMIT = TREE_LIMIT
TIMELINE_EVENTS = 100
# How far back the event page looks for a line's last known state (one event at a time, and
# only while a line is still unknown: usually the previous event carries them all).
LOOKBACK_EVENTS = 50
TEMPLATES = ("event.html", "timeline.html")


@dataclass(frozen=True)
class Shown:
    """A body as the page shows it: a tree (small bodies), text, and how much is left out."""

    tree: Any
    text: str
    omitted: int  # bytes of the body not in ``text``
    xml: bool = False  # tXML: shown as the text it came as, never parsed here


def shown(data: bytes | None, content_type: str | None = None) -> Shown | None:
    if not data:
        return None
    xml = looks_like_xml(data, content_type)
    if len(data) <= TEXT_LIMIT:
        if xml:
            return Shown(None, data.decode("utf-8", "replace"), 0, xml=True)
        return Shown(tree(data), pretty(data), 0)
    text = data[:TEXT_LIMIT].decode("utf-8", "replace")
    return Shown(None, text, len(data) - TEXT_LIMIT, xml=xml)


@dataclass(frozen=True)
class EventPage:
    """What the event page needs beside the store (all of it small and picklable)."""

    common: dict[str, Any]  # navigation and the session's action token
    settings: Settings
    raw_base: str  # scheme://host of this inspector, for the curl line
    notice: str | None


def event_page(store: Store, event_id: int, page: EventPage) -> str:
    """The event page; ``NotFound`` when there is no such event."""
    event = store.get_event(event_id)
    settings = page.settings
    return render(
        "event.html",
        **page.common,
        event=event,
        notice=page.notice,
        changes=event_changes(event, earlier_events(store, event)),
        body=shown(event.body, _content_type(event)),
        fetched=shown(event.fetched),
        exchange=exchange(event, settings),
        curl=curl_command(settings, event, page.raw_base) if event.body else None,
        replay_url=receiver_url(settings, event.kind),
    )


def _content_type(event: StoredEvent) -> str | None:
    for name, value in event.headers.items():
        if str(name).lower() == "content-type":
            return str(value)
    return None


def earlier_events(store: Store, event: StoredEvent) -> Iterator[StoredEvent]:
    """The events of ``event``'s order or shipment before it, newest first, read one at a time
    as the comparison asks for them (at most ``LOOKBACK_EVENTS``)."""
    if not event.resource_id:
        return
    before = event.id
    for _ in range(LOOKBACK_EVENTS):
        previous = store.previous_event(event.resource_id, before)
        if previous is None:
            return
        yield previous
        before = previous.id


def timeline_page(store: Store, resource_id: str, common: dict[str, Any]) -> str | None:
    """Every event of one order or shipment (up to ``TIMELINE_EVENTS``); None if there is none."""
    events = store.resource_events(resource_id, limit=TIMELINE_EVENTS + 1)
    if not events:
        return None
    more = len(events) > TIMELINE_EVENTS
    events = events[:TIMELINE_EVENTS]
    steps = list(zip(events, timeline_changes(events), strict=True))
    number = next((event.number for event in reversed(events) if event.number), None)
    resource = "shipment" if "shipment" in events[-1].kind else "order"
    return render(
        "timeline.html",
        **common,
        steps=steps,
        more=more,
        resource=resource,
        resource_id=resource_id,
        number=number,
    )
