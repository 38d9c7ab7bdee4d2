"""``serve`` with ``reconcile.every``: the real command reconciles at start and logs it."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import orjson

from tcwebhook.config import load_settings
from tcwebhook.delivery.status import outbox_status
from tcwebhook.store import open_store
from tests.helpers.fake_tradecloud import PASSWORD, USERNAME, FakeTradecloud
from tests.helpers.reconcile import T, order, put, stamp
from tests.helpers.serve import start_server


async def test_serve_reconciles_on_its_timer_logs_it_and_status_shows_it(
    tmp_path: Path, fake_api: FakeTradecloud, ca_file: Path
) -> None:
    put(fake_api, order(1, stamp(1)), order(2, stamp(2)))
    config = tmp_path / "tcwebhook.yaml"
    config.write_text(
        f"""
data_dir: {tmp_path / "data"}
tradecloud:
  base_url: {fake_api.base_url}
  ca_file: {ca_file}
  username: {USERNAME}
  password: {PASSWORD}
reconcile:
  every: 15m
"""
    )
    settings = load_settings(config)

    store = open_store(settings.store_url)
    try:  # what `reconcile --since T` leaves behind on a first run
        store.set_reconcile_cursor("order-search/poll", T)
        store.set_reconcile_cursor("shipment/poll", T)
    finally:
        store.close()

    process, _ = start_server(tmp_path / "data", "--config", str(config), "--port", "0")
    log = next((tmp_path).glob("serve-*.log"))
    try:
        deadline = time.monotonic() + 20
        report = None
        while report is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)  # the fake API answers on this loop meanwhile
            for line in log.read_bytes().splitlines():
                if line.startswith(b'{"reconcile"'):
                    report = orjson.loads(line)["reconcile"]
        assert report is not None, log.read_text()
        assert report["recovered"] == 2 and report["trigger"] == "serve"
        assert {e["number"] for e in report["endpoints"][0]["events"]} == {"PO000001", "PO000002"}
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 20)
    store = open_store(settings.store_url, read_only=True)
    try:
        status = outbox_status(store, 3600, 300)
    finally:
        store.close()
    assert status["reconcile"]["recovered"] == 2 and status["events"] == {"order_recovered": 2}
