"""GET webhooks: the receiver records a fetch job; the worker attaches the fetched object."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import time
from pathlib import Path

import orjson
import pytest

from tcwebhook.config import RetrySettings
from tcwebhook.delivery.worker import DeliveryWorker
from tcwebhook.store import SqliteStore, Store
from tests.helpers.fake_tradecloud import ORDER_ID, PASSWORD, SHIPMENT_ID, USERNAME, FakeTradecloud
from tests.helpers.outbox import make_settings, open_for, store_notification

# A back-off of 0.1 to 0.2 s: long enough to see, short enough not to wait for in real time.
BACK_OFF = RetrySettings(max_attempts=3, base_delay=0.2, max_delay=0.2)


def settings_for(tmp_path: Path, fake: FakeTradecloud, ca_file: Path):  # type: ignore[no-untyped-def]
    return make_settings(
        tmp_path,
        base_url=fake.base_url,
        username=USERNAME,
        password=PASSWORD,
        ca_file=ca_file,
        fetch_retry=BACK_OFF,
    )


@pytest.mark.usefixtures("store_backend")
async def test_order_notification_gets_the_order_and_its_changed_lines(
    tmp_path: Path, fake_api: FakeTradecloud, ca_file: Path, stores: list
) -> None:
    settings = settings_for(tmp_path, fake_api, ca_file)
    store: Store = open_for(settings, stores)
    event_id = store_notification(store, settings, "order", ORDER_ID)
    await DeliveryWorker(store, settings).drain()
    event = store.get_event(event_id)
    assert event.tasks[0].state == "done"
    assert orjson.loads(event.fetched)["id"] == ORDER_ID
    # No earlier version: the rule of docs/tradecloud.md#changed-lines.
    assert event.fetched_changed_lines == ("0003",)
    detail = event.detail()
    assert detail["fetched"]["id"] == ORDER_ID and detail["fetched_changed_lines"] == ["0003"]

    # The order changes again: now lines are compared with the version fetched before.
    order = json.loads(fake_api.orders[ORDER_ID])
    changed = copy.deepcopy(order)
    changed["lines"][0]["lastUpdatedAt"] = "2025-06-05T08:00:00Z"
    changed["lastUpdatedAt"] = "2025-06-05T08:00:00Z"
    fake_api.orders[ORDER_ID] = json.dumps(changed).encode()
    second = store_notification(store, settings, "order", ORDER_ID)
    await DeliveryWorker(store, settings).drain()
    assert store.get_event(second).fetched_changed_lines == ("0001",)


async def test_api_outage_is_retried_with_back_off_and_survives_a_restart(
    tmp_path: Path, fake_api: FakeTradecloud, ca_file: Path, stores: list
) -> None:
    settings = settings_for(tmp_path, fake_api, ca_file)
    store = open_for(settings, stores)
    event_id = store_notification(store, settings, "shipment", SHIPMENT_ID)
    fake_api.fail_next["shipment"] = [503, 503]
    before = time.time()
    await DeliveryWorker(store, settings).drain()
    after = time.time()
    task = store.get_event(event_id).tasks[0]
    assert (task.state, task.attempts) == ("failed", 1)
    # The next try waits for the back-off (half to all of base_delay on the first failure).
    assert before + 0.1 <= task.next_attempt_at <= after + 0.2
    assert "503" in task.last_error or "unavailable" in task.last_error.lower()
    assert store.get_event(event_id).fetched is None

    store.close()  # "restart": a new store and worker on the same database
    store = open_for(settings, stores)
    await asyncio.sleep(max(0.0, task.next_attempt_at - time.time()))  # until it is due
    await DeliveryWorker(store, settings).drain()
    event = store.get_event(event_id)
    assert event.tasks[0].state == "done" and event.tasks[0].attempts == 2
    assert event.fetched_changed_lines == ("DA-2025-07-0091/1",)


async def test_wrong_credentials_are_kept_as_the_error_and_never_leak(
    tmp_path: Path, fake_api: FakeTradecloud, ca_file: Path, stores: list
) -> None:
    settings = make_settings(
        tmp_path,
        base_url=fake_api.base_url,
        username=USERNAME,
        password="wrong-secret",
        ca_file=ca_file,
    )
    store = open_for(settings, stores)
    event_id = store_notification(store, settings, "order", ORDER_ID)
    await DeliveryWorker(store, settings).drain()
    task = store.get_event(event_id).tasks[0]
    assert task.state == "failed"
    assert "wrong-secret" not in task.last_error
    assert "password" in task.last_error.lower() or "credential" in task.last_error.lower()


async def test_get_webhook_to_the_real_serve_ends_with_the_order_attached(
    tmp_path: Path, fake_api: FakeTradecloud, ca_file: Path
) -> None:
    import signal
    import ssl

    import aiohttp

    from tests.helpers.serve import start_server

    config = tmp_path / "tcwebhook.yaml"
    config.write_text(
        f"tradecloud:\n  base_url: {fake_api.base_url}\n  username: {USERNAME}\n"
        f"  password: ${{TC_PASSWORD}}\n  ca_file: {ca_file}\n"
    )
    data_dir = tmp_path / "data"
    os.environ["TC_PASSWORD"] = PASSWORD
    try:
        process, url = await asyncio.to_thread(
            start_server, data_dir, "--config", str(config), "--port", "0"
        )
    finally:
        del os.environ["TC_PASSWORD"]
    try:
        context = ssl.create_default_context(cafile=str(data_dir / "dev-ca.pem"))
        token = (data_dir / "token").read_text().strip()
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"{url}/{ORDER_ID}", ssl=context, headers={"Authorization": f"Bearer {token}"}
            ) as response,
        ):
            assert response.status == 200
            event_id = (await response.json())["id"]
        store = SqliteStore(data_dir / "events.db")
        for _ in range(100):
            event = store.get_event(event_id)
            if event.fetched is not None:
                break
            await asyncio.sleep(0.1)
        assert orjson.loads(event.fetched)["id"] == ORDER_ID
        assert event.fetched_changed_lines == ("0003",)
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 15)
