"""The outbox end to end: sinks, filters, retries, dead deliveries, ordering."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from tcwebhook import samples
from tcwebhook.config import RetrySettings
from tcwebhook.delivery.sinks import file_name
from tcwebhook.delivery.worker import DeliveryWorker
from tcwebhook.store import Store
from tests.helpers.outbox import (
    make_settings,
    open_for,
    sink,
    store_body,
    store_notification,
    with_message_id,
)

pytestmark = pytest.mark.usefixtures("store_backend")  # every test on both backends

WEBHOOK_SAMPLES = [sample for sample in samples.catalog() if sample.is_webhook]


def sample_bytes(sample: samples.Sample) -> bytes:
    return orjson.dumps(sample.body)


async def test_directory_sink_delivers_every_catalog_event(tmp_path: Path, stores: list) -> None:
    outbox = tmp_path / "outbox"
    settings = make_settings(tmp_path, sink("files", "directory", path=outbox))
    store = open_for(settings, stores)
    ids = [store_body(store, settings, sample_bytes(sample)) for sample in WEBHOOK_SAMPLES]
    attempts = await DeliveryWorker(store, settings).drain()
    assert attempts == len(WEBHOOK_SAMPLES)
    files = sorted(outbox.iterdir())
    assert len(files) == len(WEBHOOK_SAMPLES)
    assert [f.name for f in files] == sorted(file_name(store.get_event(i)) for i in ids)
    for path, sample in zip(files, WEBHOOK_SAMPLES, strict=True):  # names sort by arrival
        assert orjson.loads(path.read_bytes()) == sample.body
    assert not list(outbox.glob(".*"))  # no temporary files left behind
    # Re-delivery overwrites the same files: idempotent.
    store.requeue_tasks(event_id=ids[0])
    await DeliveryWorker(store, settings).drain()
    assert len(list(outbox.iterdir())) == len(WEBHOOK_SAMPLES)


def test_file_names_are_safe_and_stable(tmp_path: Path, stores: list) -> None:
    settings = make_settings(tmp_path)
    store = open_for(settings, stores)
    body = {
        "eventName": "OrderIssuedByBuyer",
        "orderEvent": {"buyerOrder": {"purchaseOrderNumber": "PO/2025 ..x"}},
    }
    event_id = store_body(store, settings, orjson.dumps(body))
    name = file_name(store.get_event(event_id))
    assert name == file_name(store.get_event(event_id))
    assert "/" not in name and " " not in name and name.endswith(f"_{event_id:09d}.json")
    assert "_OrderIssuedByBuyer_PO-2025-..x_" in name


async def test_command_sink_gets_event_on_stdin_and_metadata_in_environment(
    tmp_path: Path, stores: list
) -> None:
    log = tmp_path / "runs.jsonl"
    script = (
        "import json, os, sys; body = json.load(sys.stdin); "
        f"open({str(log)!r}, 'a').write(json.dumps({{'name': body['eventName'], "
        "'env': {k: v for k, v in os.environ.items() if k.startswith('TCWEBHOOK_')}}) + '\\n'); "
        "print('imported')"
    )
    settings = make_settings(tmp_path, sink("erp", "command", run=(sys.executable, "-c", script)))
    store = open_for(settings, stores)
    body = WEBHOOK_SAMPLES[0].body
    event_id = store_body(store, settings, orjson.dumps(body))
    await DeliveryWorker(store, settings).drain()
    run = orjson.loads(log.read_bytes().splitlines()[0])
    assert run["name"] == body["eventName"]
    assert run["env"]["TCWEBHOOK_EVENT_ID"] == str(event_id)
    assert run["env"]["TCWEBHOOK_EVENT_NAME"] == body["eventName"]
    assert run["env"]["TCWEBHOOK_KIND"] == "order"
    assert run["env"]["TCWEBHOOK_MESSAGE_ID"] == body["meta"]["messageId"]
    task = store.get_event(event_id).tasks[0]
    assert (task.state, task.output.strip()) == ("done", "imported")


async def test_command_sink_that_fails_twice_then_succeeds(tmp_path: Path, stores: list) -> None:
    counter = tmp_path / "count"
    script = (
        "import pathlib, sys; p = pathlib.Path(sys.argv[1]); "
        "n = int(p.read_text()) + 1 if p.exists() else 1; p.write_text(str(n)); "
        "sys.exit(0 if n >= 3 else (sys.stderr.write('ERP locked\\n') or 4))"
    )
    retry = RetrySettings(max_attempts=5, base_delay=0.05, max_delay=0.05)
    erp = sink("erp", "command", run=(sys.executable, "-c", script, str(counter)), retry=retry)
    settings = make_settings(tmp_path, erp)
    store = open_for(settings, stores)
    event_id = store_body(store, settings, sample_bytes(WEBHOOK_SAMPLES[0]))
    worker = DeliveryWorker(store, settings)
    runner = asyncio.create_task(worker.run())
    for _ in range(100):
        await asyncio.sleep(0.05)
        if store.get_event(event_id).tasks[0].state == "done":
            break
    worker.stop()
    await runner
    task = store.get_event(event_id).tasks[0]
    assert (task.state, task.attempts) == ("done", 3)
    assert counter.read_text() == "3"


async def test_command_timeout_and_missing_program(tmp_path: Path, stores: list) -> None:
    slow = sink(
        "slow", "command", run=(sys.executable, "-c", "import time; time.sleep(5)"), timeout=0.3
    )
    missing = sink("missing", "command", run=(str(tmp_path / "no-such-program"),))
    settings = make_settings(tmp_path, slow, missing)
    store = open_for(settings, stores)
    event_id = store_body(store, settings, sample_bytes(WEBHOOK_SAMPLES[0]))
    await DeliveryWorker(store, settings).drain()
    errors = {task.target: task.last_error for task in store.get_event(event_id).tasks}
    assert "did not finish within 0.3 s" in errors["slow"]
    assert "cannot run" in errors["missing"] and "No such file" in errors["missing"]


class FlakyEndpoint:
    """An internal HTTP endpoint that answers 503 for a while, then 200."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.received: list[dict[str, Any]] = []
        self.headers: list[str | None] = []

    async def handle(self, request: web.Request) -> web.Response:
        if self.failures > 0:
            self.failures -= 1
            return web.Response(status=503, text="ERP maintenance")
        self.received.append(await request.json())
        self.headers.append(request.headers.get("Authorization"))
        return web.Response(text="ok")


async def test_http_sink_outage_then_recovery_keeps_order(
    tmp_path: Path, stores: list, aiohttp_server: Any
) -> None:
    endpoint = FlakyEndpoint(failures=4)
    app = web.Application()
    app.router.add_post("/erp", endpoint.handle)
    server = await aiohttp_server(app)
    retry = RetrySettings(max_attempts=10, base_delay=0.02, max_delay=0.05)
    esb = sink(
        "esb",
        "http",
        url=f"http://127.0.0.1:{server.port}/erp",
        headers={"Authorization": "Bearer x"},
        retry=retry,
        content="envelope",
    )
    settings = make_settings(tmp_path, esb)
    store = open_for(settings, stores)
    sent = [
        store_body(store, settings, with_message_id(WEBHOOK_SAMPLES[i].body, f"m{i}"))
        for i in range(6)
    ]
    worker = DeliveryWorker(store, settings)
    runner = asyncio.create_task(worker.run())
    for _ in range(200):
        await asyncio.sleep(0.05)
        if len(endpoint.received) == len(sent):
            break
    worker.stop()
    await runner
    assert [envelope["id"] for envelope in endpoint.received] == sent  # in order, none lost
    assert endpoint.headers == ["Bearer x"] * len(sent)
    first = store.get_event(sent[0]).tasks[0]
    assert first.state == "done" and first.attempts == 5
    assert endpoint.received[0]["payload"]["eventName"] == WEBHOOK_SAMPLES[0].event_name


async def test_dead_after_max_attempts_then_retry_dead_recovers(
    tmp_path: Path, stores: list
) -> None:
    target = tmp_path / "not-yet-a-dir"
    target.write_text("a file where the outbox should be")
    settings = make_settings(tmp_path, sink("files", "directory", path=target))
    store = open_for(settings, stores)
    event_id = store_body(store, settings, sample_bytes(WEBHOOK_SAMPLES[0]))
    for _ in range(3):
        await DeliveryWorker(store, settings).drain()
        await asyncio.sleep(0.12)
    task = store.get_event(event_id).tasks[0]
    assert (task.state, task.attempts) == ("dead", 3)
    assert "cannot write to" in task.last_error
    assert store.list_events(task_state="dead")[0].id == event_id
    target.unlink()  # the operator fixes the sink
    assert store.requeue_tasks(dead_only=True) == 1
    await DeliveryWorker(store, settings).drain()
    assert store.get_event(event_id).tasks[0].state == "done"
    assert len(list(target.iterdir())) == 1


def test_filters_by_event_name_glob_and_kind(tmp_path: Path, stores: list) -> None:
    shipments = sink("shipments", "directory", path=tmp_path / "s", kinds=("shipment",))
    rejections = sink("rejections", "directory", path=tmp_path / "r", events=("*Rejected*",))
    everything = sink("all", "directory", path=tmp_path / "a")
    settings = make_settings(tmp_path, shipments, rejections, everything)
    store = open_for(settings, stores)
    routed = {}
    for name in ("shipment-issued", "order-lines-rejected", "shipment-rejected", "order-issued"):
        event_id = store_body(store, settings, sample_bytes(samples.get_sample(name)))
        routed[name] = sorted(task.target for task in store.get_event(event_id).tasks)
    notification = store_notification(store, settings, "order", "o-1")
    assert routed == {
        "shipment-issued": ["all", "shipments"],
        "order-lines-rejected": ["all", "rejections"],
        "shipment-rejected": ["all", "rejections", "shipments"],
        "order-issued": ["all"],
    }
    assert sorted(t.target for t in store.get_event(notification).tasks) == ["@fetch", "all"]


async def test_sink_waits_for_the_fetch_of_a_notification(tmp_path: Path, stores: list) -> None:
    settings = make_settings(
        tmp_path,
        sink("files", "directory", path=tmp_path / "out", content="envelope"),
        base_url="https://127.0.0.1:9/v2",  # nothing listens: the fetch fails
    )
    store: Store = open_for(settings, stores)
    event_id = store_notification(store, settings, "order", "o-1")
    await DeliveryWorker(store, settings).drain()
    states = {t.target: t.state for t in store.get_event(event_id).tasks}
    assert states == {"@fetch": "failed", "files": "pending"}
    assert not (tmp_path / "out").exists()


async def test_command_and_http_sinks_deliver_every_catalog_event(
    tmp_path: Path, stores: list, aiohttp_server: Any
) -> None:
    received: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        received.append((await request.json())["meta"]["messageId"])
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/erp", handle)
    server = await aiohttp_server(app)
    runs = tmp_path / "runs.txt"
    script = f'cat > /dev/null && echo "$TCWEBHOOK_MESSAGE_ID" >> {runs}'
    settings = make_settings(
        tmp_path,
        sink("import", "command", run=("sh", "-c", script)),
        sink("esb", "http", url=f"http://127.0.0.1:{server.port}/erp", concurrency=4),
    )
    store = open_for(settings, stores)
    for sample in WEBHOOK_SAMPLES:
        store_body(store, settings, sample_bytes(sample))
    await DeliveryWorker(store, settings).drain()
    expected = sorted(sample.body["meta"]["messageId"] for sample in WEBHOOK_SAMPLES)
    assert sorted(runs.read_text().split()) == expected
    assert sorted(received) == expected
