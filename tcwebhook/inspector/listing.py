"""The event list filtered by sink: the store pages by kind, event, delivery state and search;
the sink is applied here, over a bounded number of the store's pages, so a page costs the same
however rare the sink's deliveries are (a short page offers "older" to read on)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from tcwebhook.store import EventQuery, Store, StoredEvent

# Store pages read for one page of the list before it is shown as it is.
MAX_SCANNED_PAGES = 20


@dataclass(frozen=True)
class SinkPage:
    events: list[StoredEvent]  # newest first
    older_than: int | None  # where the next page starts; None: nothing older to read


def delivered_to(event: StoredEvent, sink: str, state: str | None) -> bool:
    """Whether ``event`` has a delivery to ``sink`` (in ``state``, when one is given)."""
    return any(task.target == sink and state in (None, task.state) for task in event.tasks)


def sink_page(store: Store, query: EventQuery, sink: str) -> SinkPage:
    """Up to ``query.limit`` events older than ``query.before`` matching ``query`` with a
    delivery to ``sink`` in ``query.task_state``."""
    found: list[StoredEvent] = []
    before = query.before
    for _ in range(MAX_SCANNED_PAGES):
        events = store.page_events(replace(query, before=before, after=None))
        for event in events:
            if delivered_to(event, sink, query.task_state):
                found.append(event)
                if len(found) == query.limit:
                    return SinkPage(found, event.id)
        if len(events) < query.limit:
            return SinkPage(found, None)
        before = events[-1].id
    return SinkPage(found, before)
