"""An inspector app in-process over a real store, and events to fill it with."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from tcwebhook.config import AuthSettings, Settings, StoreSettings
from tcwebhook.events import parse_webhook
from tcwebhook.inspector import create_app
from tcwebhook.store import NewEvent, Store, open_store, utc_now
from tests.conftest import FIXTURES

SAMPLES = FIXTURES / "tradecloud"
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


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        auth=AuthSettings(type="bearer", token=TOKEN),
        store=StoreSettings(url=os.environ.get("TCWEBHOOK_STORE_URL")),  # see store_backend
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    opened = open_store(settings.store_url)
    yield opened
    opened.close()


@pytest.fixture
async def inspector(
    aiohttp_client: Any, settings: Settings, store: Store
) -> AsyncIterator[TestClient]:
    client: TestClient = await aiohttp_client(create_app(settings, store))
    yield client
