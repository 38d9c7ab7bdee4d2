"""Deliver again: re-queue one event's deliveries, or every dead one, optionally to one sink."""

from __future__ import annotations

from tcwebhook.errors import UsageError
from tcwebhook.store import Store


def requeue_deliveries(
    store: Store, event_id: int | None, sink: str | None, dead_only: bool
) -> int:
    """How many deliveries were made due again; an unknown event or sink is one clear error
    rather than "0 re-queued"."""
    if event_id is not None:
        store.get_event(event_id)
    if sink is not None and sink not in (targets := store.targets()):
        raise UsageError(
            f"--sink {sink}: no deliveries to a sink of that name "
            f"(sinks with deliveries: {', '.join(targets) or 'none'})"
        )
    return store.requeue_tasks(event_id=event_id, target=sink, dead_only=dead_only)
