"""Fetch-through for GET webhooks: fetch the order or shipment and attach it to the event."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson

from tcwebhook import changes
from tcwebhook.config import RetrySettings, Settings
from tcwebhook.delivery import FETCH_TARGET
from tcwebhook.delivery.sinks import DeliveryFailed
from tcwebhook.errors import TcwebhookError
from tcwebhook.protocol import EventKind
from tcwebhook.store import Store, StoredEvent
from tcwebhook.tradecloud import TradecloudClient


@dataclass(frozen=True)
class FetchPolicy:
    """How the worker schedules fetches (the same fields a sink's settings have)."""

    name: str = FETCH_TARGET
    concurrency: int = 4  # each fetch reads the current object, so order does not matter
    timeout: float = 120.0
    retry: RetrySettings = field(default_factory=RetrySettings)


class FetchSink:
    """A 'sink' whose delivery is fetching the object of a GET notification from the API."""

    def __init__(self, settings: Settings, store: Store) -> None:

        self.settings = FetchPolicy(retry=settings.tradecloud.fetch_retry)
        self.store = store
        # One quick retry inside the client; the worker's back-off handles longer outages.
        self.client = TradecloudClient.from_settings(settings, attempts=2, backoff=0.5)

    async def deliver(self, event: StoredEvent) -> str | None:
        kind = EventKind(event.kind).resource
        assert event.resource_id is not None
        try:
            fetched = await self.client.fetch(kind, event.resource_id)
        except TcwebhookError as exc:
            raise DeliveryFailed(str(exc)) from None
        previous = await asyncio.to_thread(self.store.previous_fetched, event.resource_id, event.id)
        changed = changed_line_keys(kind, fetched.data, previous)
        await asyncio.to_thread(self.store.attach_fetched, event.id, fetched.raw, changed)
        return f"fetched {kind} {event.resource_id}: {len(changed)} changed line(s)"

    def interrupt(self) -> None:
        return None  # bounded by the client's timeout

    async def close(self) -> None:
        await self.client.close()


def changed_line_keys(kind: str, data: dict[str, Any], previous: bytes | None) -> list[str]:
    """Changed lines against the previous fetched version of the same object, else the rule of
    docs/tradecloud.md#changed-lines."""
    if kind == "order":
        earlier = orjson.loads(previous) if previous else None
        result = changes.order_line_changes(data, previous=earlier)
        return [changes.order_line_key(line) for line in result.changed]
    return [item.key for item in changes.shipment_line_changes(data).changed]
