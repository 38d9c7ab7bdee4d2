"""Every kind of stored event through every ``events`` command and every sink type, on both
store backends: POST order, single-delivery order, order documents, shipment, GET notifications
(order, shipment) and recovered changes (order, shipment)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from tcwebhook.cli.events import ExportFormat
from tcwebhook.delivery.routing import task_router
from tcwebhook.delivery.worker import DeliveryWorker
from tcwebhook.events import WebhookEvent, change_key
from tcwebhook.protocol import PAYLOAD_KEY_OF_KIND, EventKind
from tcwebhook.store import NewEvent, Store, StoredEvent, utc_now
from tests.helpers.cli import in_process
from tests.helpers.fake_tradecloud import ORDER_ID, PASSWORD, SHIPMENT_ID, USERNAME, FakeTradecloud
from tests.helpers.outbox import (
    make_settings,
    open_for,
    sink,
    store_body,
    store_notification,
)
from tests.helpers.paths import FIXTURES, SAMPLES

pytestmark = pytest.mark.usefixtures("store_backend")

TRADECLOUD = FIXTURES / "tradecloud"
WEBHOOK_BODIES = {
    "order": TRADECLOUD / "order-event.json",
    "single_delivery_order": TRADECLOUD / "single-delivery-order-event.json",
    "order_documents": TRADECLOUD / "order-documents-event.json",
    "shipment": TRADECLOUD / "shipment-event.json",
}
NOTIFIED = {
    "order_notification": ("order", ORDER_ID),
    "shipment_notification": ("shipment", SHIPMENT_ID),
}
RECOVERED = {
    "order_recovered": SAMPLES / "order.json",
    "shipment_recovered": SAMPLES / "shipment.json",
}
KINDS = [*WEBHOOK_BODIES, *NOTIFIED, *RECOVERED]


def test_the_kinds_here_are_every_kind() -> None:
    assert sorted(KINDS) == sorted(kind.value for kind in EventKind)


def store_kind(store: Store, settings: Any, kind: str) -> int:
    """One event of ``kind``, stored as the receiver (or reconcile) stores it."""
    if kind in WEBHOOK_BODIES:
        return store_body(store, settings, WEBHOOK_BODIES[kind].read_bytes())
    if kind in NOTIFIED:
        return store_notification(store, settings, *NOTIFIED[kind])
    return store_recovered(store, settings, EventKind(kind))


def store_recovered(store: Store, settings: Any, kind: EventKind) -> int:
    """A change found by polling, shaped as reconcile shapes it, through append_recovered."""
    obj = orjson.loads(RECOVERED[kind.value].read_bytes())
    payload_key = PAYLOAD_KEY_OF_KIND[
        EventKind.ORDER if kind.resource == "order" else EventKind.SHIPMENT
    ]
    updated = obj.get("lastUpdatedAt") or obj.get("meta", {}).get("lastUpdatedAt")
    key = change_key(kind.resource, obj["id"], updated)
    assert key is not None
    endpoint = "order-search/poll" if kind.resource == "order" else "shipment/poll"
    body = {
        payload_key: obj,
        "meta": {
            "messageId": f"recovered-{kind.value}",
            "source": {"origin": "tcwebhook reconcile"},
        },
    }
    event = WebhookEvent(
        kind, None, f"recovered-{kind.value}", obj["id"], None, payload_key, None, ("1",)
    )
    record = NewEvent(
        received_at=utc_now(),
        kind=kind.value,
        event_name=None,
        message_id=event.message_id,
        dedup_key=key,
        resource_id=obj["id"],
        number=None,
        changed_lines=("1",),
        method="POLL",
        path="/" + endpoint,
        headers={},
        body=orjson.dumps(body),
        tasks=task_router(settings)(event),
        change_key=key,
    )
    [result] = store.append_recovered([record])
    assert not result.duplicate
    return result.id


def tcwebhook(*args: str) -> subprocess.CompletedProcess[str]:
    return in_process(*args)


def label(event: StoredEvent) -> str:
    if event.event_name:
        return event.event_name
    if event.kind.endswith("_recovered"):
        return f"RECOVERED {event.resource_id}"
    return f"GET {event.resource_id}"


def write_config(tmp_path: Path) -> Path:
    config = tmp_path / "tcwebhook.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        f"sinks:\n  - {{name: files, type: directory, path: {tmp_path / 'outbox'}}}\n"
    )
    return config


@pytest.fixture
def every_kind(tmp_path: Path, stores: list[Store]) -> tuple[Path, Store, dict[str, int]]:
    """A config with a directory sink, and one stored event of each kind (ids by kind)."""
    settings = make_settings(tmp_path, sink("files", "directory", path=tmp_path / "outbox"))
    store = open_for(settings, stores)
    ids = {kind: store_kind(store, settings, kind) for kind in KINDS}
    return write_config(tmp_path), store, ids


def check(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


# One run of a command that shows every event checks each kind; a command on one event runs
# once per kind.


def test_every_kind_in_events_list(every_kind: tuple[Path, Store, dict[str, int]]) -> None:
    config, store, ids = every_kind
    result = tcwebhook("events", "list", "--config", str(config))
    check(result)
    assert "POLL" not in result.stdout
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:] if line[:4].strip()}
    for kind, event_id in ids.items():
        event = store.get_event(event_id)
        row = rows[str(event_id)]
        # A long id wraps inside its cell: the label's first word is on the event's row.
        assert kind in row.split() and label(event).split()[0] in row.split(), kind
        if not event.event_name:
            assert (event.resource_id or "") in result.stdout, kind


def test_every_kind_in_events_list_json(every_kind: tuple[Path, Store, dict[str, int]]) -> None:
    config, store, ids = every_kind
    result = tcwebhook("events", "list", "--json", "--config", str(config))
    check(result)
    listed = {item["id"]: item for item in json.loads(result.stdout)}
    for kind, event_id in ids.items():
        event, item = store.get_event(event_id), listed[event_id]
        assert (item["kind"], item["resource_id"]) == (kind, event.resource_id), kind
        assert item["tasks"] == [{"target": t.target, "state": t.state} for t in event.tasks]


@pytest.mark.parametrize("output_format", [f.value for f in ExportFormat])
def test_every_kind_in_events_export(
    every_kind: tuple[Path, Store, dict[str, int]], output_format: str
) -> None:
    config, store, ids = every_kind
    result = tcwebhook("events", "export", "--format", output_format, "--config", str(config))
    check(result)
    exported = {
        envelope["id"]: envelope for envelope in map(json.loads, result.stdout.splitlines())
    }
    assert len(exported) == len(KINDS)
    for kind, event_id in ids.items():
        event, envelope = store.get_event(event_id), exported[event_id]
        assert (envelope["kind"], envelope["resource_id"]) == (kind, event.resource_id), kind
        assert envelope["payload"] == (orjson.loads(event.body) if event.body else None), kind
        assert envelope["event_name"] == event.event_name
        assert envelope["message_id"] == event.message_id
        assert envelope["changed_lines"] == list(event.changed_lines)


@pytest.mark.parametrize("command", ["show", "show --json", "retry"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_through_the_commands_on_one_event(
    tmp_path: Path, stores: list[Store], kind: str, command: str
) -> None:
    settings = make_settings(tmp_path, sink("files", "directory", path=tmp_path / "outbox"))
    store = open_for(settings, stores)
    event_id = store_kind(store, settings, kind)
    event = store.get_event(event_id)
    assert event.kind == kind
    options = ("--config", str(write_config(tmp_path)))
    if command == "show":
        result = tcwebhook("events", "show", str(event_id), *options)
        text = " ".join(result.stdout.split())
        assert f"kind {kind}" in text and f"event {label(event)}" in text
        assert "task files pending" in text
        if kind.endswith("_recovered"):
            assert "recovered by reconcile from the poll" in text and "POLL" not in text
        if event.body:
            assert '"meta"' in result.stdout  # the pretty body
    elif command == "show --json":
        result = tcwebhook("events", "show", str(event_id), "--json", *options)
        detail = json.loads(result.stdout)
        assert (detail["id"], detail["kind"]) == (event_id, kind)
        assert detail["message_id"] == event.message_id
        assert detail["body"] == (orjson.loads(event.body) if event.body else None)
        assert detail["changed_lines"] == list(event.changed_lines)
    else:
        result = tcwebhook("events", "retry", str(event_id), *options)
        assert f"{len(event.tasks)} delivery(ies) re-queued" in result.stderr
        assert {t.state for t in store.get_event(event_id).tasks} == {"pending"}
    check(result)


@pytest.mark.parametrize("kind", [*WEBHOOK_BODIES, *RECOVERED])
def test_retry_of_an_event_without_deliveries_says_why(
    tmp_path: Path, stores: list[Store], kind: str
) -> None:
    settings = make_settings(tmp_path)  # no sink: only a GET notification has a task (@fetch)
    store = open_for(settings, stores)
    event_id = store_kind(store, settings, kind)
    result = tcwebhook("events", "retry", str(event_id), "--data-dir", str(tmp_path / "data"))
    check(result)
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("0 delivery(ies) re-queued: ")
    assert f"event #{event_id} has no deliveries" in line and kind in line


def test_retry_to_a_sink_the_event_has_no_delivery_to_says_so(
    tmp_path: Path, stores: list[Store]
) -> None:
    settings = make_settings(
        tmp_path,
        sink("files", "directory", path=tmp_path / "outbox"),
        sink("shipments", "directory", path=tmp_path / "s", kinds=(EventKind.SHIPMENT,)),
    )
    store = open_for(settings, stores)
    store_kind(store, settings, "shipment")  # so that 'shipments' has deliveries
    order = store_kind(store, settings, "order")
    options = ("--data-dir", str(tmp_path / "data"))
    result = tcwebhook("events", "retry", str(order), "--sink", "shipments", *options)
    check(result)
    assert result.stderr.strip() == (
        f"0 delivery(ies) re-queued: event #{order} has no delivery to shipments "
        "(its deliveries: files)"
    )


# ----------------------------------------------------------------------------------------------
# Every kind reaches every sink type, with a correct envelope


@pytest.fixture
async def endpoint(aiohttp_server: Any) -> tuple[str, list[bytes]]:
    received: list[bytes] = []

    async def handle(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/erp", handle)
    server = await aiohttp_server(app)
    return f"http://127.0.0.1:{server.port}/erp", received


@pytest.mark.parametrize("kind", KINDS)
async def test_every_kind_reaches_every_sink_type(
    tmp_path: Path,
    stores: list[Store],
    fake_api: FakeTradecloud,
    ca_file: Path,
    endpoint: tuple[str, list[bytes]],
    kind: str,
) -> None:
    url, received = endpoint
    commands = tmp_path / "commands"
    commands.mkdir()
    script = (
        f'cat > "{commands}/$TCWEBHOOK_EVENT_ID.json" && echo "$TCWEBHOOK_KIND" > "{commands}/kind"'
    )
    settings = make_settings(
        tmp_path,
        sink("files", "directory", path=tmp_path / "outbox"),  # content: payload
        sink("import", "command", run=("sh", "-c", script), content="envelope"),
        sink("esb", "http", url=url, content="envelope"),
        base_url=fake_api.base_url,
        ca_file=ca_file,
        username=USERNAME,
        password=PASSWORD,
    )
    store = open_for(settings, stores)
    event_id = store_kind(store, settings, kind)
    await DeliveryWorker(store, settings).drain()
    event = store.get_event(event_id)
    assert {t.target: t.state for t in event.tasks} == {
        **({"@fetch": "done"} if kind in NOTIFIED else {}),
        "files": "done",
        "import": "done",
        "esb": "done",
    }

    [written] = list((tmp_path / "outbox").iterdir())
    as_command = (commands / f"{event_id}.json").read_bytes()
    assert (commands / "kind").read_text().strip() == kind
    [as_http] = received
    assert as_command == as_http, "one envelope, whatever the sink"
    envelope = orjson.loads(as_http)
    assert envelope["id"] == event_id and envelope["kind"] == kind
    assert envelope["event_name"] == event.event_name and envelope["message_id"] == event.message_id
    assert envelope["resource_id"] == event.resource_id and envelope["number"] == event.number
    assert envelope["changed_lines"] == list(event.changed_lines)
    if kind in NOTIFIED:
        _, resource_id = NOTIFIED[kind]
        assert envelope["payload"] is None
        assert envelope["fetched"]["id"] == resource_id  # the object the @fetch attached
        assert orjson.loads(written.read_bytes()) == envelope  # no body: always an envelope
    else:
        assert envelope["payload"] == orjson.loads(event.body) and envelope["fetched"] is None
        assert written.read_bytes() == event.body  # content: payload, byte for byte
    assert str(event_id) in written.name
