"""Every kind of stored event replays to a real ``serve`` and is stored there: through
``tcwebhook events replay ID`` and through ``tcwebhook replay FILE`` of the same body.

The events are made as in production: webhooks are sent to the receiver by replay, recovered
events are stored by ``reconcile`` polling the fake Tradecloud API.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from tcwebhook import samples
from tcwebhook.reconcile import reconcile
from tcwebhook.replay import ReplayOptions, Source, load_sources, replay
from tcwebhook.replay.recovered import as_webhook, is_recovered
from tcwebhook.store.records import StoredEvent
from tests.helpers.cli import Result as CliResult
from tests.helpers.fake_tradecloud import FakeTradecloud
from tests.helpers.reconcile import order, put, settings_for, shipment, stamp
from tests.helpers.replay import TOKEN, Receiver, ServerFactory

Cli = Callable[..., Awaitable[CliResult]]
StartReceiver = Callable[[str], Awaitable[Receiver]]
SINCE = datetime(2025, 6, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Kind:
    stored: str  # the kind of the event in the source store
    received: str  # the kind the target stores on replay
    sample: str | None = None  # sent to the source receiver to make the event
    get: bool = False
    delivery_mode: str | None = None  # recovered events: reconcile's order mode


KINDS = {
    "post order": Kind("order", "order", "order-lines-accepted"),
    "single-delivery order": Kind(
        "single_delivery_order", "single_delivery_order", "single-delivery-order-lines-accepted"
    ),
    "order documents": Kind(
        "order_documents", "order_documents", "order-documents-attached-by-supplier"
    ),
    "shipment": Kind("shipment", "shipment", "shipment-reissued"),
    "get order": Kind("order_notification", "order_notification", "order", get=True),
    "get shipment": Kind("shipment_notification", "shipment_notification", "shipment", get=True),
    "recovered order": Kind("order_recovered", "order", delivery_mode="delivery-schedule"),
    "recovered single-delivery order": Kind(
        "order_recovered", "single_delivery_order", delivery_mode="single-delivery"
    ),
    "recovered shipment": Kind("shipment_recovered", "shipment"),
}


async def make_event(
    kind: Kind, receiver: Receiver, tmp_path: Path, fake_api: FakeTradecloud, ca_file: Path
) -> StoredEvent:
    """The event of ``kind`` in the source store, made the way production makes it."""
    if kind.sample is not None:
        source = Source(kind.sample, samples.get_sample(kind.sample).body)
        target = receiver.target(method="GET" if kind.get else "POST")
        report = await replay([source], target, ReplayOptions())
        assert report.all_delivered, report.to_json(with_bodies=True)
    else:
        mode = {"delivery_mode": kind.delivery_mode} if kind.delivery_mode else {}
        settings = settings_for(tmp_path, fake_api, ca_file, **mode)
        is_order = kind.stored == "order_recovered"
        result = await reconcile(
            settings, receiver.store, since=SINCE, orders=is_order, shipments=not is_order
        )
        assert result.ok and len(result.recovered) == 1, result.to_json()
    (event,) = receiver.store.list_events(kind=kind.stored)
    return receiver.store.get_event(event.id)


def target_flags(target: Receiver, kind: Kind) -> list[str]:
    paths = target.settings.server.paths
    path = paths.shipment if kind.received.startswith("shipment") else paths.order
    return ["--url", target.url(path), "--ca-file", str(target.ca_file), "--token", TOKEN]


def file_for(event: StoredEvent, kind: Kind, tmp_path: Path) -> Path:
    """What a user would save to replay the event: its body (for a GET notification, which
    has none, the object it names, as the API returns it)."""
    path = tmp_path / f"event-{event.id}.json"
    if kind.get:
        path.write_bytes(json.dumps(samples.get_sample(kind.sample or "").body).encode())
    else:
        path.write_bytes(event.body)
    return path


def received_one(target: Receiver, kind: Kind, source: StoredEvent) -> StoredEvent:
    (summary,) = target.store.list_events()
    event = target.store.get_event(summary.id)
    assert event.kind == kind.received
    assert event.resource_id == source.resource_id
    if kind.get:
        assert (event.method, event.body) == ("GET", b"")
    elif kind.stored.endswith("_recovered"):
        assert_sent_as_tradecloud_would(event, source)
    else:
        assert (event.body, event.event_name) == (source.body, source.event_name)
    return event


def assert_sent_as_tradecloud_would(event: StoredEvent, recovered: StoredEvent) -> None:
    """The recovered object whole, as a resent event, its numbers as stored (the fake's poll
    writes floats, so digits beyond a float's are checked in the conversion's own test)."""
    sent = json.loads(event.body, parse_float=Decimal)
    polled = json.loads(recovered.body, parse_float=Decimal)
    (key,) = (name for name in polled if name != "meta")
    assert set(sent) == {"eventName", key, "meta"}
    assert sent["meta"] == polled["meta"]  # same messageId: the same change, stored once
    is_order = recovered.kind == "order_recovered"
    assert event.event_name == ("OrderResentByBuyer" if is_order else "ShipmentResentByBuyer")
    expected = dict(polled[key])
    if is_order:
        expected["orderId"] = expected.pop("id")
    assert sent[key] == expected
    assert event.change_key == recovered.change_key


@pytest.fixture
async def fake_api(aiohttp_server: ServerFactory, server_ssl_ctx: Any) -> FakeTradecloud:
    """The fake API holding one changed order and one changed shipment for reconcile."""
    fake = FakeTradecloud()
    server: TestServer = await aiohttp_server(fake.app(), ssl=server_ssl_ctx)
    fake.base_url = f"https://127.0.0.1:{server.port}/v2"
    put(fake, order(1, stamp(5)), shipment(1, stamp(6)))
    return fake


@pytest.mark.parametrize("name", list(KINDS))
async def test_every_kind_replays_and_is_stored(
    name: str,
    cli: Cli,
    receiver: Receiver,
    receiver_at: StartReceiver,
    fake_api: FakeTradecloud,
    ca_file: Path,
    tmp_path: Path,
) -> None:
    kind = KINDS[name]
    event = await make_event(kind, receiver, tmp_path, fake_api, ca_file)
    by_id, by_file = await receiver_at("by-id"), await receiver_at("by-file")
    path = file_for(event, kind, tmp_path)
    get_flag = ["--method", "GET"] if kind.get else []

    from_store, from_file = await asyncio.gather(
        # A stored GET notification is sent as one with no --method: it has no body.
        cli("events", "replay", str(event.id), *target_flags(by_id, kind)),
        cli("replay", str(path), *target_flags(by_file, kind), *get_flag),
    )

    for result in (from_store, from_file):
        assert result.code == 0, result
        assert "delivered" in result.stdout and "Traceback" not in result.stderr
    by_store_event = received_one(by_id, kind, event)
    by_file_event = received_one(by_file, kind, event)
    assert by_store_event.body == by_file_event.body


def test_recovered_body_becomes_a_resent_webhook() -> None:
    """The conversion alone: key order kept, id renamed in place, exact numbers, meta kept."""
    raw = (
        b'{"orderEvent": {"id": "o-1", "version": 3, "lines": [{"q": 1.10, "big": '
        b'123456789012345678901234567890}]}, "meta": {"messageId": "m-1", "source": '
        b'{"origin": "tcwebhook reconcile", "endpoint": "order-search/poll"}}}'
    )
    assert is_recovered(json.loads(raw))
    sent = as_webhook(raw, "event #1")
    assert sent == (
        b'{"eventName":"OrderResentByBuyer","orderEvent":{"orderId":"o-1","version":3,'
        b'"lines":[{"q":1.10,"big":123456789012345678901234567890}]},"meta":{"messageId":'
        b'"m-1","source":{"origin":"tcwebhook reconcile","endpoint":"order-search/poll"}}}'
    )
    webhook = json.loads(sent)
    assert not is_recovered(webhook)  # a webhook, whatever its meta says, is sent as it is
    assert not is_recovered({"orderEvent": {}, "meta": {"source": {"origin": "erp"}}})


def test_recovered_body_on_stdin_is_sent_as_a_webhook() -> None:
    raw = (
        b'{"shipment": {"id": "s-1", "meta": {"lastUpdatedAt": "2025-06-01T00:00:00Z"}}, '
        b'"meta": {"messageId": "m-2", "source": {"origin": "tcwebhook reconcile"}}}'
    )
    (source,) = load_sources(["-"], stdin=io.BytesIO(raw))
    assert source.raw is not None and source.body["eventName"] == "ShipmentResentByBuyer"
    assert source.body["shipment"]["id"] == "s-1"  # a shipment keeps its id
    assert source.body["meta"]["messageId"] == "m-2"


async def test_set_overrides_the_recovered_event_name(
    cli: Cli, receiver: Receiver, receiver_at: StartReceiver, fake_api: FakeTradecloud,
    ca_file: Path, tmp_path: Path,
) -> None:  # fmt: skip
    kind = KINDS["recovered order"]
    event = await make_event(kind, receiver, tmp_path, fake_api, ca_file)
    target = await receiver_at("target")
    result = await cli(
        "events", "replay", str(event.id), *target_flags(target, kind),
        "--set", "eventName=OrderLinesAcceptedBySupplier",
    )  # fmt: skip
    assert result.code == 0, result
    (stored,) = target.store.list_events()
    assert stored.event_name == "OrderLinesAcceptedBySupplier"


async def test_a_notification_refuses_set(
    cli: Cli, receiver: Receiver, receiver_at: StartReceiver, fake_api: FakeTradecloud,
    ca_file: Path, tmp_path: Path,
) -> None:  # fmt: skip
    kind = KINDS["get order"]
    event = await make_event(kind, receiver, tmp_path, fake_api, ca_file)
    target = await receiver_at("target")
    result = await cli(
        "events", "replay", str(event.id), *target_flags(target, kind), "--set", "a=1"
    )
    assert result.code == 2, result
    (line,) = result.stderr.strip().splitlines()
    assert "GET notification" in line and "--set" in line
    assert not target.store.list_events()
