"""Deliver again: re-queue one event's deliveries, or every dead one, optionally to one sink."""

from __future__ import annotations

from tcwebhook.errors import UsageError
from tcwebhook.store import Store, StoredEvent


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


def nothing_to_requeue(event: StoredEvent, sink: str | None) -> str:
    """Why re-queuing ``event``'s deliveries (to ``sink``) changed none, in one sentence."""
    targets = [task.target for task in event.tasks if sink is None or task.target == sink]
    if not event.tasks:
        name = f" {event.event_name}" if event.event_name else ""
        return (
            f"event #{event.id} has no deliveries: no sink took this {event.kind}{name} event "
            "when it was stored (a sink's kinds and events filters decide, and a sink added "
            "later gets no earlier events); 'tcwebhook events replay' sends it anywhere"
        )
    if not targets:
        others = ", ".join(sorted({task.target for task in event.tasks}))
        return f"event #{event.id} has no delivery to {sink} (its deliveries: {others})"
    return (
        f"event #{event.id}'s deliveries ({', '.join(targets)}) are being attempted right now; "
        "nothing to retry"
    )
