"""Which sinks an event goes to, decided when it is stored (in the same transaction)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fnmatch import fnmatchcase

from tcwebhook.config import SinkSettings
from tcwebhook.events import WebhookEvent


def matches(sink: SinkSettings, event: WebhookEvent) -> bool:
    """A sink takes an event when its kind and its eventName pass the sink's filters."""
    if sink.kinds and event.kind.value not in sink.kinds:
        return False
    if sink.events:
        # A GET notification has no event name: only a sink without a name filter takes it.
        name = event.event_name
        return name is not None and any(fnmatchcase(name, pattern) for pattern in sink.events)
    return True


def sink_router(sinks: Sequence[SinkSettings]) -> Callable[[WebhookEvent], tuple[str, ...]]:
    """A task router for ``create_app``: the names of the sinks that take each event."""

    def route(event: WebhookEvent) -> tuple[str, ...]:
        return tuple(sink.name for sink in sinks if matches(sink, event))

    return route
