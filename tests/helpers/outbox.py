"""For outbox tests: settings with sinks, a store, and events stored like serve does."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from tcwebhook.config import (
    RetrySettings,
    Settings,
    SinkSettings,
    StoreSettings,
    TradecloudSettings,
)
from tcwebhook.delivery.routing import task_router
from tcwebhook.events import parse_notification, parse_webhook
from tcwebhook.store import NewEvent, Store, open_store, utc_now

FAST_RETRY = RetrySettings(max_attempts=3, base_delay=0.05, max_delay=0.1)


def sink(name: str, type: str, **options: Any) -> SinkSettings:
    return SinkSettings(name=name, type=type, retry=options.pop("retry", FAST_RETRY), **options)  # type: ignore[arg-type]


def make_settings(tmp_path: Path, *sinks: SinkSettings, **tradecloud: Any) -> Settings:
    """Settings on the current store backend (see the ``store_backend`` fixture)."""
    return Settings(
        data_dir=tmp_path / "data",
        sinks=sinks,
        tradecloud=TradecloudSettings(**tradecloud),
        store=StoreSettings(url=os.environ.get("TCWEBHOOK_STORE_URL")),
    )


def open_for(settings: Settings, stores: list[Store]) -> Store:
    store = open_store(settings.store_url)
    stores.append(store)
    return store


def store_body(store: Store, settings: Settings, body: bytes) -> int:
    """Store a webhook body with its tasks, as the receiver does."""
    event = parse_webhook(body)
    return _append(store, settings, event, body, "POST", "/tradecloud/order")


def store_notification(store: Store, settings: Settings, resource: str, resource_id: str) -> int:
    event = parse_notification(resource, resource_id)  # type: ignore[arg-type]
    return _append(store, settings, event, b"", "GET", f"/tradecloud/{resource}/{resource_id}")


def _append(
    store: Store, settings: Settings, event: Any, body: bytes, method: str, path: str
) -> int:
    dedup = f"m:{event.message_id}" if event.message_id else None
    record = NewEvent(
        received_at=utc_now(),
        kind=event.kind.value,
        event_name=event.event_name,
        message_id=event.message_id,
        dedup_key=dedup,
        resource_id=event.resource_id,
        number=event.number,
        changed_lines=event.changed_lines,
        method=method,
        path=path,
        headers={},
        body=body,
        tasks=task_router(settings)(event),
    )
    return store.append_sync(record).id


def with_message_id(body: dict[str, Any], message_id: str) -> bytes:
    return orjson.dumps({**body, "meta": {**body.get("meta", {}), "messageId": message_id}})
