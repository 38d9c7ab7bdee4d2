"""The replay library against the real receiver app and fake endpoints, over TLS on loopback."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
import pytest

from tcwebhook import samples
from tcwebhook.errors import ReplaySourceError, ReplayTargetError
from tcwebhook.replay import (
    ReplayOptions,
    RetryPolicy,
    Source,
    Target,
    classify,
    replay,
)
from tests.helpers.replay import AUTHORIZATION, Fake, Receiver

FakeFactory = Callable[[list[int]], Awaitable[Fake]]
FAST_RETRY = RetryPolicy(enabled=True, max_attempts=5, initial_delay=0.01, max_delay=0.05)


def sample_source(name: str) -> Source:
    return Source(name, samples.get_sample(name).body)


def fake_target(fake: Fake, ca_file: Path, **changes: object) -> Target:
    values: dict[str, object] = {
        "order_url": fake.url,
        "shipment_url": fake.url,
        "ca_file": ca_file,
    }
    values.update(changes)
    return Target(**values)  # type: ignore[arg-type]


async def test_every_catalog_sample_is_stored_by_serve(receiver: Receiver) -> None:
    webhooks = [s for s in samples.catalog() if s.is_webhook]
    report = await replay(
        [Source(s.name, s.body) for s in webhooks],
        receiver.target(),
        ReplayOptions(concurrency=8),
    )
    assert report.all_delivered, [r for r in report.results if not r.delivered]
    assert receiver.store.count() == len(webhooks) == 96
    stored = {(e.event_name, e.kind) for e in receiver.store.list_events(limit=200)}
    assert stored == {(s.event_name, s.kind) for s in webhooks}  # the same kinds


async def test_api_objects_are_sent_as_get_notifications(receiver: Receiver) -> None:
    sources = [sample_source("order"), sample_source("shipment")]
    report = await replay(sources, receiver.target(method="GET"), ReplayOptions())
    assert report.all_delivered
    events = {e.kind: e for e in receiver.store.list_events()}
    assert events["order_notification"].resource_id == samples.get_sample("order").body["id"]
    shipment_id = samples.get_sample("shipment").body["id"]
    assert events["shipment_notification"].resource_id == shipment_id
    assert events["shipment_notification"].path.endswith("/tradecloud/shipment/" + shipment_id)


async def test_get_with_the_id_in_the_query(receiver: Receiver) -> None:
    report = await replay(
        [sample_source("order-issued"), sample_source("shipment-issued")],
        receiver.target(method="GET", id_in="query"),
        ReplayOptions(),
    )
    assert report.all_delivered
    order, shipment = reversed(receiver.store.list_events())
    order_id = samples.get_sample("order-issued").body["orderEvent"]["orderId"]
    assert order.kind == "order_notification" and order.resource_id == order_id
    assert order.path == f"/tradecloud/order?orderId={order_id}"
    assert shipment.path.startswith("/tradecloud/shipment?shipmentId=")
    assert order.body == b""


async def test_get_fills_a_placeholder_in_the_url(
    fake_endpoint: FakeFactory, ca_file: Path
) -> None:
    fake = await fake_endpoint([200])
    url = fake.url + "/orders/{orderId}/notify"
    target = fake_target(fake, ca_file, order_url=url, method="GET")
    source = Source("odd", {"orderEvent": {"orderId": "a/b c"}, "eventName": "X"})
    report = await replay([source], target, ReplayOptions())
    assert report.all_delivered
    method, path, _, body = fake.requests[0]
    assert (method, path, body) == ("GET", "/hook/orders/a%2Fb%20c/notify", b"")


async def test_post_sends_json_with_content_type_and_auth(
    fake_endpoint: FakeFactory, ca_file: Path
) -> None:
    fake = await fake_endpoint([202])
    target = fake_target(fake, ca_file, authorization=AUTHORIZATION)
    report = await replay([sample_source("order-lines-accepted")], target, ReplayOptions())
    (result,) = report.results
    assert (result.status, result.verdict, result.attempts) == (202, "delivered", 1)
    method, _, headers, body = fake.requests[0]
    assert method == "POST"
    assert headers["Content-Type"] == "application/json"
    assert headers["Authorization"] == AUTHORIZATION
    assert orjson.loads(body) == samples.get_sample("order-lines-accepted").body


async def test_without_fresh_ids_the_receiver_deduplicates(receiver: Receiver) -> None:
    source = sample_source("order-issued")
    report = await replay([source, source], receiver.target(), ReplayOptions(keep_response=True))
    assert report.all_delivered
    assert receiver.store.count() == 1
    assert '"duplicate"' in (report.results[1].response_body or "")


async def test_fresh_ids_make_every_event_new(receiver: Receiver) -> None:
    source = sample_source("order-issued")
    report = await replay([source, source], receiver.target(), ReplayOptions(fresh_ids=True))
    assert report.all_delivered
    ids = {result.message_id for result in report.results}
    original = source.body["meta"]["messageId"]
    assert len(ids) == 2 and original not in ids
    assert {e.message_id for e in receiver.store.list_events()} == ids


async def test_set_overrides_fields(receiver: Receiver) -> None:
    options = ReplayOptions(
        assignments=(
            ("eventName", "OrderLinesRejectedBySupplier"),
            ("orderEvent.buyerOrder.purchaseOrderNumber", "PO-OVERRIDE-1"),
            ("orderEvent.lines.0.buyerLine.position", "99"),
        )
    )
    report = await replay([sample_source("order-lines-accepted")], receiver.target(), options)
    assert report.results[0].event_name == "OrderLinesRejectedBySupplier"
    (event,) = receiver.store.list_events()
    assert event.event_name == "OrderLinesRejectedBySupplier"
    assert event.number == "PO-OVERRIDE-1"
    assert event.changed_lines == ("99", "20")


async def test_wrong_token_is_dropped(receiver: Receiver) -> None:
    target = receiver.target(authorization="Bearer wrong")
    report = await replay([sample_source("shipment-issued")], target, ReplayOptions())
    (result,) = report.results
    assert (result.status, result.verdict) == (401, "dropped")
    assert not report.all_delivered
    assert receiver.store.count() == 0


async def test_load_mode_sends_count_copies_with_fresh_ids(receiver: Receiver) -> None:
    seen: list[int | None] = []
    report = await replay(
        [sample_source("shipment-issued"), sample_source("order-issued")],
        receiver.target(),
        ReplayOptions(count=150, concurrency=12),
        on_result=lambda result: seen.append(result.status),
    )
    assert len(report.results) == len(seen) == 150
    assert report.status_counts == {"200": 150}
    assert report.all_delivered and receiver.store.count() == 150
    assert len({result.message_id for result in report.results}) == 150
    names = [result.event_name for result in report.results]
    assert names.count("ShipmentIssuedBySupplier") == names.count("OrderIssuedByBuyer") == 75
    p50, p95, p99 = (report.latency_percentile(p) for p in (50, 95, 99))
    assert p50 is not None and p95 is not None and p99 is not None
    assert 0 < p50 <= p95 <= p99
    assert report.throughput > 0
    summary = report.to_json()
    assert summary["sent"] == summary["delivered"] == 150


async def test_retry_delivers_on_the_third_attempt(
    fake_endpoint: FakeFactory, ca_file: Path
) -> None:
    fake = await fake_endpoint([503, 503, 200])
    report = await replay(
        [sample_source("order-issued")], fake_target(fake, ca_file), ReplayOptions(retry=FAST_RETRY)
    )
    (result,) = report.results
    assert (result.status, result.attempts, result.verdict) == (200, 3, "delivered")
    assert len(fake.requests) == 3
    bodies = {request[3] for request in fake.requests}
    assert len(bodies) == 1  # a retry resends the same message, same messageId


async def test_without_retry_a_503_is_reported_as_retried_by_tradecloud(
    fake_endpoint: FakeFactory, ca_file: Path
) -> None:
    fake = await fake_endpoint([503, 200])
    report = await replay(
        [sample_source("order-issued")], fake_target(fake, ca_file), ReplayOptions()
    )
    (result,) = report.results
    assert (result.status, result.attempts, result.verdict) == (503, 1, "retried")
    assert not report.all_delivered


@pytest.mark.parametrize("status", [500, 400, 404, 422])
async def test_500_and_4xx_are_never_retried(
    fake_endpoint: FakeFactory, ca_file: Path, status: int
) -> None:
    fake = await fake_endpoint([status, 200])
    report = await replay(
        [sample_source("order-issued")], fake_target(fake, ca_file), ReplayOptions(retry=FAST_RETRY)
    )
    (result,) = report.results
    assert (result.status, result.attempts, result.verdict) == (status, 1, "dropped")
    assert len(fake.requests) == 1


async def test_retry_gives_up_after_max_attempts(fake_endpoint: FakeFactory, ca_file: Path) -> None:
    fake = await fake_endpoint([502])
    policy = RetryPolicy(enabled=True, max_attempts=3, initial_delay=0.01, max_delay=0.01)
    report = await replay(
        [sample_source("shipment-issued")], fake_target(fake, ca_file), ReplayOptions(retry=policy)
    )
    assert report.results[0].attempts == 3 and len(fake.requests) == 3


async def test_connection_errors_are_retried_then_reported(free_port: int, ca_file: Path) -> None:
    url = f"https://127.0.0.1:{free_port}/hook"
    target = Target(url, url, ca_file)
    policy = RetryPolicy(enabled=True, max_attempts=3, initial_delay=0.01, max_delay=0.01)
    with pytest.raises(ReplayTargetError) as caught:
        await replay([sample_source("order-issued")], target, ReplayOptions(retry=policy))
    assert f"127.0.0.1:{free_port}" in str(caught.value)


async def test_untrusted_certificate_is_a_tls_error_with_a_hint(fake_endpoint: FakeFactory) -> None:
    fake = await fake_endpoint([200])
    target = Target(fake.url, fake.url)  # system trust only: the test CA is unknown
    with pytest.raises(ReplayTargetError) as caught:
        await replay([sample_source("order-issued")], target, ReplayOptions())
    message = str(caught.value)
    assert "certificate" in message and "--ca-file" in message
    assert not fake.requests


async def test_insecure_skips_verification(fake_endpoint: FakeFactory) -> None:
    fake = await fake_endpoint([200])
    target = Target(fake.url, fake.url, insecure=True)
    report = await replay([sample_source("order-issued")], target, ReplayOptions())
    assert report.all_delivered


async def test_full_object_cannot_be_posted(receiver: Receiver) -> None:
    with pytest.raises(ReplaySourceError, match="--method GET"):
        await replay([sample_source("order")], receiver.target(), ReplayOptions())
    assert receiver.store.count() == 0


def test_classification_follows_tradecloud_rules() -> None:
    assert classify(200) == classify(202) == "delivered"
    assert classify(400) == classify(401) == classify(500) == "dropped"
    assert classify(501) == classify(503) == classify(504) == "retried"
    assert classify(302) == "undocumented"
    assert classify(None) == "no-answer"


def test_back_off_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(enabled=True, max_attempts=10, initial_delay=0.5, max_delay=3)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1, 2, 3, 3]
    assert policy.should_retry(503, 1) and policy.should_retry(None, 1)
    assert not policy.should_retry(500, 1) and not policy.should_retry(404, 1)
    assert not policy.should_retry(503, 10)
    assert not RetryPolicy().should_retry(503, 1)


async def test_credentials_in_the_url_never_reach_the_results(
    fake_endpoint: FakeFactory, ca_file: Path
) -> None:
    fake = await fake_endpoint([200])
    url = fake.url.replace("https://", "https://hook-user:s3cret-pw@")
    report = await replay(
        [sample_source("order-issued")], Target(url, url, ca_file), ReplayOptions()
    )
    assert report.all_delivered
    assert fake.requests[0][2]["Authorization"].startswith("Basic ")
    assert "s3cret-pw" not in orjson.dumps(report.to_json(with_bodies=True)).decode()
