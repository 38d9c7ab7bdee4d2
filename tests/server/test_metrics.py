"""Prometheus metrics: counted in the app, summed over ``serve --workers``, read from the store."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from tcwebhook.datadir import DEV_CA_FILE
from tcwebhook.errors import ConfigError
from tcwebhook.metrics import Metrics, create_metrics_app, scrape_registry
from tcwebhook.store import open_store
from tests.helpers.paths import FIXTURES
from tests.helpers.receiver import AUTH, MakeReceiver
from tests.helpers.serve import send_all, start_server

ORDER = (FIXTURES / "tradecloud" / "order-event.json").read_bytes()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_requests_events_and_auth_failures_are_counted(
    make_receiver: MakeReceiver, aiohttp_client: Any
) -> None:
    metrics = Metrics()
    receiver = await make_receiver(metrics=metrics)
    for _ in range(2):  # the second is a duplicate
        assert (await receiver.post("/tradecloud/order", ORDER)).status == 200
    wrong = {"Authorization": "Bearer wrong-token"}
    assert (await receiver.post("/tradecloud/order", ORDER, wrong)).status == 401
    assert (await receiver.client.get("/tradecloud/order/PO-SECRET-42", headers=AUTH)).status == 200
    registry = scrape_registry(metrics, receiver.store, lambda: None)
    scrape = await aiohttp_client(TestServer(create_metrics_app(registry), host="127.0.0.1"))
    text = await (await scrape.get("/metrics")).text()
    found = samples(text)
    assert value(found, "tcwebhook_events_total", kind="order", outcome="stored") == 1
    assert value(found, "tcwebhook_events_total", kind="order", outcome="duplicate") == 1
    assert value(found, "tcwebhook_auth_failures_total", reason="wrong") == 1
    route = {"route": "/tradecloud/order", "method": "POST"}
    assert value(found, "tcwebhook_http_requests_total", status="200", **route) == 2
    assert value(found, "tcwebhook_http_requests_total", status="401", **route) == 1
    assert value(found, "tcwebhook_stored_events", kind="order") == 1
    assert value(found, "tcwebhook_store_commit_batch_size_count") == 0  # observer set by serve
    assert "PO-SECRET-42" not in text and "wrong-token" not in text  # never labels
    assert "/tradecloud/order/{resource_id}" in text
    assert value(found, "tcwebhook_build_info", version=__import__("tcwebhook").__version__) == 1


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _scrape(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return await response.text()


def test_scrape_of_serve_with_two_workers_matches_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    port = _free_port()
    monkeypatch.setenv("TCWEBHOOK_METRICS_LISTEN", f"127.0.0.1:{port}")
    ids = [str(uuid.uuid4()) for _ in range(1000)]  # as many as 'replay --count 1000' sends
    process, url = start_server(data_dir, "--port", "0", "--workers", "2")
    try:
        token = (data_dir / "token").read_text().strip()
        acknowledged = asyncio.run(send_all(url, token, data_dir / DEV_CA_FILE, ids))
        text = asyncio.run(_scrape(f"http://127.0.0.1:{port}/metrics"))
        context = ssl.create_default_context(cafile=str(data_dir / DEV_CA_FILE))
        webhook_port = url.rsplit("/", 2)[0] + "/metrics"  # never on the Tradecloud-facing port
        assert asyncio.run(_get_tls(webhook_port, context, token)) == 404
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    assert acknowledged == set(ids)
    store = open_store(f"sqlite:///{data_dir / 'events.db'}", read_only=True)
    try:
        stored = store.count()
    finally:
        store.close()
    found = samples(text)
    assert value(found, "tcwebhook_events_total", kind="order", outcome="stored") == stored
    assert value(found, "tcwebhook_stored_events", kind="order") == stored
    route = {"route": "/tradecloud/order", "method": "POST", "status": "200"}
    assert value(found, "tcwebhook_http_requests_total", **route) == len(ids)
    assert value(found, "tcwebhook_store_commit_batch_size_sum") == stored
    assert value(found, "tcwebhook_server_certificate_expiry_timestamp_seconds") > 0
    assert not os.environ.get("PROMETHEUS_MULTIPROC_DIR")


async def _get_tls(url: str, context: ssl.SSLContext, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, ssl=context, headers=headers) as response,
    ):
        return response.status


def test_metrics_port_must_differ_from_the_webhook_port() -> None:
    from tcwebhook.config import MetricsSettings, ServerSettings, Settings

    with pytest.raises(ConfigError, match="another port"):
        Settings(server=ServerSettings(port=8443), metrics=MetricsSettings("127.0.0.1:8443"))
    with pytest.raises(ConfigError, match="HOST:PORT"):
        MetricsSettings("9464")


async def test_hostile_paths_and_methods_do_not_make_new_series(
    make_receiver: MakeReceiver, aiohttp_client: Any
) -> None:
    metrics = Metrics()
    receiver = await make_receiver(metrics=metrics)
    for number in range(3):
        await receiver.client.get(f"/orders/PO-{number}", headers=AUTH)
        await receiver.client.request("PROPFIND", "/tradecloud/order", headers=AUTH)
        await receiver.client.request(f"X{number}", f"/nowhere/PO-{number}", headers=AUTH)
    registry = scrape_registry(metrics, receiver.store, lambda: None)
    scrape = await aiohttp_client(TestServer(create_metrics_app(registry), host="127.0.0.1"))
    text = await (await scrape.get("/metrics")).text()
    found = samples(text)
    series = {labels for name, labels in found if name == "tcwebhook_http_requests_total"}
    assert "PO-" not in text and "/nowhere" not in text
    assert len(series) <= 3, series
