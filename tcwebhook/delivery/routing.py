"""Which sinks an event goes to, decided when it is stored (in the same transaction)."""

from __future__ import annotations

from collections.abc import Callable
from fnmatch import fnmatchcase

from tcwebhook.config import Settings, SinkSettings
from tcwebhook.delivery import FETCH_TARGET
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


def task_router(settings: Settings) -> Callable[[WebhookEvent], tuple[str, ...]]:
    """A task router for ``create_app``: the API fetch of a GET notification, then the sinks
    that take the event."""

    sinks = settings.sinks

    def route(event: WebhookEvent) -> tuple[str, ...]:
        targets = tuple(sink.name for sink in sinks if matches(sink, event))
        return (FETCH_TARGET, *targets) if event.kind.is_notification else targets

    return route
