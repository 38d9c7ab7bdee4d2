"""The receiver over real HTTPS: routes, auth, status codes, durability rules."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import socket
import sqlite3
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer

from tcwebhook import txml
from tcwebhook.config import AuthSettings, ServerSettings, Settings, SinkSettings
from tcwebhook.delivery.content import render
from tcwebhook.delivery.sinks import DirectorySink
from tcwebhook.server.app import RequestLog, create_app
from tcwebhook.store import AppendResult, NewEvent, SqliteStore, Store, open_store
from tests.helpers.paths import FIXTURES, SAMPLES
from tests.helpers.receiver import AUTH, MAX_BODY, TOKEN, MakeReceiver, Receiver
from tests.helpers.store import backend_url

ORDER = (FIXTURES / "tradecloud" / "order-event.json").read_bytes()
SHIPMENT = (FIXTURES / "tradecloud" / "shipment-event.json").read_bytes()
DOCUMENTS = (FIXTURES / "tradecloud" / "order-documents-event.json").read_bytes()
SINGLE = (FIXTURES / "tradecloud" / "single-delivery-order-event.json").read_bytes()


async def test_post_order_is_stored_with_headers_but_not_credentials(receiver: Receiver) -> None:
    secrets = {
        "Proxy-Authorization": "Basic cHJveHk6c2VjcmV0",
        "Cookie": "session=secret",
        "X-Api-Key": "secret-key",
        "X-Auth-Token": "secret-token",
        "X-Client-Secret": "secret",
    }
    response = await receiver.post("/tradecloud/order", ORDER, {"X-Trace": "abc", **secrets})
    assert response.status == 200
    answer = await response.json()
    assert answer["status"] == "stored"
    stored = receiver.store.get_event(answer["id"])
    assert stored.body == ORDER
    assert stored.kind == "order" and stored.event_name == "OrderLinesAcceptedBySupplier"
    assert stored.changed_lines == ("0001", "0002")
    assert stored.headers["X-Trace"] == "abc"
    assert not any(name.lower() == "authorization" for name in stored.headers)
    assert not set(secrets) & set(stored.headers), "headers that may carry a credential"
    log = receiver.logs[-1]
    assert (log.status, log.kind, log.number, log.changed_lines) == (
        200,
        "order",
        "PO2025000417",
        2,
    )


@pytest.mark.parametrize(
    ("path", "body", "kind"),
    [
        ("/tradecloud/order", SINGLE, "single_delivery_order"),
        ("/tradecloud/order", DOCUMENTS, "order_documents"),
        ("/tradecloud/shipment", SHIPMENT, "shipment"),
    ],
)
async def test_every_payload_kind(receiver: Receiver, path: str, body: bytes, kind: str) -> None:
    response = await receiver.post(path, body)
    assert response.status == 200
    assert receiver.store.list_events()[0].kind == kind


async def test_put_is_an_alias_and_content_type_may_be_missing(receiver: Receiver) -> None:
    response = await receiver.client.put(
        "/tradecloud/order", data=ORDER, headers=AUTH, skip_auto_headers=["Content-Type"]
    )
    assert response.status == 200
    assert receiver.store.count() == 1


async def test_duplicate_message_id_is_stored_once(receiver: Receiver) -> None:
    responses = await asyncio.gather(*(receiver.post("/tradecloud/order", ORDER) for _ in range(5)))
    assert [r.status for r in responses] == [200] * 5
    answers = [await r.json() for r in responses]
    assert sorted(a["status"] for a in answers) == ["duplicate"] * 4 + ["stored"]
    assert receiver.store.count() == 1


async def test_body_without_message_id_is_deduplicated_by_hash(receiver: Receiver) -> None:
    body = orjson.dumps({"eventName": "OrderIssuedByBuyer", "orderEvent": {"orderId": "x"}})
    for _ in range(2):
        assert (await receiver.post("/tradecloud/order", body)).status == 200
    other = body.replace(b'"x"', b'"y"')
    assert (await receiver.post("/tradecloud/order", other)).status == 200
    assert receiver.store.count() == 2


async def test_unknown_event_name_is_accepted(receiver: Receiver) -> None:
    body = orjson.dumps({"eventName": "OrderBrandNewEvent", "orderEvent": {"orderId": "o"}})
    response = await receiver.post("/tradecloud/order", body)
    assert response.status == 200
    assert receiver.logs[-1].unknown_event


@pytest.mark.parametrize(
    ("path", "resource_id", "kind"),
    [
        ("/tradecloud/order/3b8f-PO%2F17", "3b8f-PO/17", "order_notification"),
        ("/tradecloud/order?orderId=o-1", "o-1", "order_notification"),
        ("/tradecloud/shipment/s-1", "s-1", "shipment_notification"),
        ("/tradecloud/shipment?shipmentId=s-2", "s-2", "shipment_notification"),
    ],
)
async def test_get_notifications(
    receiver: Receiver, path: str, resource_id: str, kind: str
) -> None:
    for _ in range(2):  # every notification counts: the same order changes many times
        response = await receiver.client.get(path, headers=AUTH)
        assert response.status == 200
    events = receiver.store.list_events()
    assert [(e.kind, e.resource_id) for e in events] == [(kind, resource_id)] * 2


async def test_get_without_id_is_400(receiver: Receiver) -> None:
    response = await receiver.client.get("/tradecloud/order", headers=AUTH)
    assert response.status == 400
    assert "orderId" in (await response.json())["error"]


async def test_healthz_needs_no_auth(receiver: Receiver) -> None:
    response = await receiver.client.get("/healthz")
    assert (response.status, await response.text()) == (200, "ok")


@pytest.mark.parametrize(
    "header",
    [None, "Bearer wrong", "Basic eDp5", "Bearer"],
)
async def test_bearer_failures_are_401(receiver: Receiver, header: str | None) -> None:
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["Authorization"] = header
    response = await receiver.client.post("/tradecloud/order", data=ORDER, headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert receiver.store.count() == 0


async def test_basic_auth(make_receiver: MakeReceiver) -> None:
    receiver = await make_receiver(AuthSettings(type="basic", username="tc", password="pa:ss"))
    good = "Basic " + base64.b64encode(b"tc:pa:ss").decode()
    bad = "Basic " + base64.b64encode(b"tc:nope").decode()
    for header, status in ((good, 200), (bad, 401), ("Basic !!!", 401)):
        response = await receiver.client.post(
            "/tradecloud/order",
            data=ORDER,
            headers={"Authorization": header, "Content-Type": "application/json"},
        )
        assert response.status == status
    assert 'Basic realm="tcwebhook"' in response.headers["WWW-Authenticate"]


async def test_unknown_path_is_404_and_wrong_method_405(receiver: Receiver) -> None:
    assert (await receiver.client.post("/elsewhere", data=ORDER, headers=AUTH)).status == 404
    response = await receiver.client.delete("/tradecloud/order", headers=AUTH)
    assert response.status == 405
    assert "POST" in response.headers["Allow"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not json", "not valid JSON"),
        (b'{"eventName": "X"}', "no payload key"),
        (b'{"eventName": "X", "orderEvent": {}, "shipment": {}}', "more than one payload key"),
    ],
)
async def test_invalid_body_is_400_with_reason(
    receiver: Receiver, body: bytes, fragment: str
) -> None:
    response = await receiver.post("/tradecloud/order", body)
    assert response.status == 400
    assert fragment in (await response.json())["error"]
    assert receiver.store.count() == 0


@pytest.mark.parametrize(
    "sample_file",
    ["order-event.json", "single-delivery-order-event.json", "order-documents-event.json"],
)
async def test_txml_is_stored_byte_exact_and_read_like_its_json(
    receiver: Receiver, sample_file: str, tmp_path: Path
) -> None:
    """Tradecloud's XML format is acknowledged like JSON (a 415 is never retried: every event
    would be lost), stored as it came, and read for the same fields."""
    body = (SAMPLES / sample_file).read_bytes()
    xml = txml.to_xml(orjson.loads(body))
    as_json = await receiver.post("/tradecloud/order", body)
    assert as_json.status == 200
    answer = await receiver.post(
        "/tradecloud/order", xml, {"Content-Type": "application/xml; charset=utf-8"}
    )
    assert answer.status == 200, await answer.text()
    assert (await answer.json())["status"] == "duplicate"  # the same meta.messageId
    fresh = txml.to_xml(_with_message_id(orjson.loads(body), "txml-1"))
    answer = await receiver.post("/tradecloud/order", fresh, {"Content-Type": "text/xml"})
    stored_json, stored_xml = (
        receiver.store.get_event(1),
        receiver.store.get_event((await answer.json())["id"]),
    )
    assert stored_xml.body == fresh
    for field in ("kind", "event_name", "resource_id", "number", "changed_lines"):
        assert getattr(stored_xml, field) == getattr(stored_json, field), field
    # Handed on as received: a .xml file holding the same bytes, or text in an envelope.
    outbox = tmp_path / "outbox"
    sink = DirectorySink(SinkSettings(name="erp", type="directory", path=outbox))
    written = Path(str(await sink.deliver(stored_xml)))
    assert written.suffix == ".xml" and written.read_bytes() == fresh
    wrapped = orjson.loads(render(stored_xml, "envelope"))
    assert wrapped["payload"] == fresh.decode() and wrapped["payload_type"] == "application/xml"


async def test_txml_that_cannot_be_read_safely_is_400(receiver: Receiver) -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><webhook>&a;</webhook>'
    for body in (bomb, b"<webhook><unclosed></webhook>"):
        response = await receiver.post(
            "/tradecloud/order", body, {"Content-Type": "application/xml"}
        )
        assert response.status == 400
    assert receiver.store.count() == 0


def _with_message_id(payload: dict[str, Any], message_id: str) -> dict[str, Any]:
    key = next(k for k in payload if k.endswith("Event") or k == "shipment")
    meta = payload.get("meta") or payload[key].get("meta")
    meta["messageId"] = message_id
    return payload


async def test_declared_length_over_limit_is_413(receiver: Receiver) -> None:
    response = await receiver.post("/tradecloud/order", b" " * (MAX_BODY + 1))
    assert response.status == 413


async def test_streamed_body_over_limit_is_413_without_reading_it_all(receiver: Receiver) -> None:
    sent = 0

    async def endless():  # chunked, no Content-Length: the server must stop on its own
        nonlocal sent
        chunk = b" " * 65536
        while sent < 50 * MAX_BODY:
            sent += len(chunk)
            yield chunk

    try:
        response = await receiver.client.post(
            "/tradecloud/order",
            data=endless(),
            headers={**AUTH, "Content-Type": "application/json"},
        )
        assert response.status == 413
    except (ConnectionError, OSError) as exc:  # the server may close before we finish writing
        pytest.fail(f"expected a 413 answer, got {exc!r}")
    assert sent < 50 * MAX_BODY
    assert receiver.store.count() == 0


async def test_store_failure_is_503_never_500(make_receiver: MakeReceiver) -> None:
    receiver = await make_receiver(busy_timeout=0.1)
    blocker = sqlite3.connect(receiver.store.path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        response = await receiver.post("/tradecloud/order", ORDER)
        assert response.status == 503
        assert response.headers["Retry-After"]
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    response = await receiver.post("/tradecloud/order", ORDER)  # Tradecloud's retry then lands
    assert response.status == 200 and receiver.store.count() == 1


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
async def test_old_tls_clients_are_refused(receiver: Receiver, version: ssl.TLSVersion) -> None:
    from tests.helpers.tls import legacy_client_context

    context = legacy_client_context(version)
    host, port = receiver.client.server.host, receiver.client.server.port

    def handshake() -> str:
        with socket.create_connection((host, port), timeout=5) as sock:
            try:
                with context.wrap_socket(sock, server_hostname="localhost"):
                    return "accepted"
            except ssl.SSLError as exc:
                return str(exc)

    outcome = await asyncio.to_thread(handshake)
    # The server aborts the handshake (alert or bare close); the client did offer the version.
    assert "PROTOCOL_VERSION" in outcome or "UNEXPECTED_EOF" in outcome, outcome
    modern = ssl.create_default_context()
    modern.check_hostname, modern.verify_mode = False, ssl.CERT_NONE
    context = modern
    assert await asyncio.to_thread(handshake) == "accepted"


async def test_plain_http_gets_no_response(receiver: Receiver) -> None:
    host, port = receiver.client.server.host, receiver.client.server.port

    def plain_request() -> bytes:
        with socket.create_connection((host, port), timeout=5) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            try:
                return sock.recv(4096)
            except ConnectionResetError:
                return b""

    answer = await asyncio.to_thread(plain_request)
    assert b"HTTP/1.1" not in answer


async def test_healthz_fails_while_the_store_cannot_take_events(
    make_receiver: MakeReceiver,
) -> None:
    receiver = await make_receiver(busy_timeout=0.1)
    blocker = sqlite3.connect(receiver.store.path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another program holds the write lock
    try:
        assert (await receiver.post("/tradecloud/order", ORDER)).status == 503
        health = await receiver.client.get("/healthz")
        assert health.status == 503 and health.headers["Retry-After"] == "5"
        assert str(receiver.store.path) not in await health.text()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert (await receiver.post("/tradecloud/order", ORDER)).status == 200
    assert (await receiver.client.get("/healthz")).status == 200


async def test_healthz_fails_when_the_database_file_is_deleted(receiver: Receiver) -> None:
    receiver.store.path.unlink()
    assert (await receiver.client.get("/healthz")).status == 503


# ----------------------------------------------------------------------------------------------
# An unexpected exception inside the handler: Tradecloud drops an event answered 500 for good.

PAYLOAD_SECRET = "PO-NEVER-SHOWN-7f3a"


class _BuggyStore(SqliteStore):
    """A store with a bug: ``append`` raises what no handler expects, quoting the payload."""

    def __init__(self, *args: Any, failure: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failure = failure

    def append(self, event: NewEvent) -> asyncio.Future[AppendResult]:
        error = KeyError(f"{self.failure}: {event.body.decode()[:400]}")
        if self.failure == "raises":
            raise error
        future: asyncio.Future[AppendResult] = asyncio.get_running_loop().create_future()
        future.set_exception(error)  # the writer thread failing with a surprise
        return future


async def _receiver_over(
    store: Store,
    aiohttp_client: Any,
    server_ssl_ctx: ssl.SSLContext,
    client_ssl_ctx: ssl.SSLContext,
    tmp_path: Path,
) -> Receiver:
    settings = Settings(
        data_dir=tmp_path / "data",
        server=ServerSettings(max_body_bytes=MAX_BODY),
        auth=AuthSettings(type="bearer", token=TOKEN),
    )
    logs: list[RequestLog] = []
    server = TestServer(create_app(settings, store, request_logger=logs.append), host="127.0.0.1")
    await server.start_server(ssl=server_ssl_ctx)
    client = await aiohttp_client(server, connector=aiohttp.TCPConnector(ssl=client_ssl_ctx))
    return Receiver(client, store, logs)  # type: ignore[arg-type]


@pytest.mark.parametrize("failure", ["raises", "future fails"])
async def test_unexpected_exception_is_503_with_retry_after_and_tells_nothing(
    aiohttp_client: Any,
    server_ssl_ctx: ssl.SSLContext,
    client_ssl_ctx: ssl.SSLContext,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    failure: str,
) -> None:
    (tmp_path / "data").mkdir()
    store = _BuggyStore(tmp_path / "data" / "events.db", failure=failure)
    try:
        receiver = await _receiver_over(
            store, aiohttp_client, server_ssl_ctx, client_ssl_ctx, tmp_path
        )
        body = ORDER.replace(b"PO2025000417", PAYLOAD_SECRET.encode())
        caplog.set_level(logging.DEBUG)
        response = await receiver.post("/tradecloud/order", body)
        answer = await response.text()
    finally:
        store.close()
    assert response.status == 503, "Tradecloud never retries a 500: the event would be lost"
    assert int(response.headers["Retry-After"]) > 0
    for leak in (PAYLOAD_SECRET, "KeyError", "Traceback", "append"):
        assert leak not in answer
    records = [r for r in caplog.records if r.name.startswith(("tcwebhook", "aiohttp"))]
    assert not any(r.exc_info or r.exc_text or r.stack_info for r in records), "a traceback"
    texts = [r.getMessage() for r in records]
    assert not any(PAYLOAD_SECRET in text for text in texts)
    about = [text for text in texts if "KeyError" in text]
    assert len(about) == 1 and "\n" not in about[0], texts
    assert receiver.logs[-1].status == 503
    assert PAYLOAD_SECRET not in (receiver.logs[-1].error or "")


# ----------------------------------------------------------------------------------------------
# Deduplication is by meta.messageId (docs/tradecloud.md#delivery), never by the bytes, on both
# backends; a body without one is deduplicated by its hash; a GET notification never is.


@pytest.fixture
async def any_receiver(
    store_backend: str,
    aiohttp_client: Any,
    server_ssl_ctx: ssl.SSLContext,
    client_ssl_ctx: ssl.SSLContext,
    tmp_path: Path,
) -> AsyncIterator[Receiver]:
    store = open_store(backend_url(tmp_path))
    try:
        yield await _receiver_over(store, aiohttp_client, server_ssl_ctx, client_ssl_ctx, tmp_path)
    finally:
        store.close()


def _reversed_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _reversed_keys(value[key]) for key in reversed(value)}
    if isinstance(value, list):
        return [_reversed_keys(item) for item in value]
    return value


def _same_message_other_bytes(body: bytes) -> dict[str, bytes]:
    data = orjson.loads(body)
    payload_key = next(key for key in data if key not in ("eventName", "meta"))
    changed = orjson.loads(body)
    changed[payload_key]["aFieldTradecloudAddedLater"] = "resent with a change"
    changed["eventName"] = changed["eventName"] + "Again"
    return {
        "re-serialised": json.dumps(data, ensure_ascii=True, separators=(", ", ": ")).encode(),
        "whitespace": orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n\n  ",
        "key order": orjson.dumps(_reversed_keys(data)),
        "changed field": orjson.dumps(changed),
    }


def _legacy(body: bytes, legacy_key: str) -> bytes:
    data = orjson.loads(body)
    current = next(key for key in data if key not in ("eventName", "meta"))
    data[legacy_key] = data.pop(current)
    return orjson.dumps(data)


BODIES_OF_EVERY_KIND = {
    "order": ("/tradecloud/order", ORDER),
    "single delivery": ("/tradecloud/order", SINGLE),
    "documents": ("/tradecloud/order", DOCUMENTS),
    "shipment": ("/tradecloud/shipment", SHIPMENT),
    "legacy simpleOrderEvent": ("/tradecloud/order", _legacy(SINGLE, "simpleOrderEvent")),
    "legacy shipmentEvent": ("/tradecloud/shipment", _legacy(SHIPMENT, "shipmentEvent")),
}


@pytest.mark.parametrize("name", list(BODIES_OF_EVERY_KIND))
async def test_same_message_id_with_other_bytes_is_a_duplicate(
    any_receiver: Receiver, name: str
) -> None:
    path, first = BODIES_OF_EVERY_KIND[name]
    answer = await (await any_receiver.post(path, first)).json()
    assert answer["status"] == "stored"
    for variant, body in _same_message_other_bytes(first).items():
        assert body != first
        response = await any_receiver.post(path, body)
        assert response.status == 200, variant
        assert await response.json() == {"status": "duplicate", "id": answer["id"]}, variant
    assert any_receiver.store.count() == 1
    assert any_receiver.store.get_event(answer["id"]).body == first  # the first one is kept


@pytest.mark.parametrize("name", list(BODIES_OF_EVERY_KIND))
async def test_other_message_id_with_the_same_body_is_another_event(
    any_receiver: Receiver, name: str
) -> None:
    path, body = BODIES_OF_EVERY_KIND[name]
    data = orjson.loads(body)
    ids = []
    for message_id in ("message-1", "message-2"):
        data["meta"]["messageId"] = message_id
        answer = await (await any_receiver.post(path, orjson.dumps(data))).json()
        assert answer["status"] == "stored"
        ids.append(answer["id"])
    assert len(set(ids)) == 2 and any_receiver.store.count() == 2
    stored = {any_receiver.store.get_event(i).message_id for i in ids}
    assert stored == {"message-1", "message-2"}


async def test_message_id_inside_the_event_counts_and_the_top_level_one_wins(
    any_receiver: Receiver,
) -> None:
    # docs/tradecloud.md#ambiguities: meta at the top level or inside the event
    data = orjson.loads(ORDER)
    top = data.pop("meta")
    data["orderEvent"]["meta"] = {**top, "messageId": "inner-1"}
    first = await (await any_receiver.post("/tradecloud/order", orjson.dumps(data))).json()
    data["orderEvent"]["description"] = "changed"
    again = await (await any_receiver.post("/tradecloud/order", orjson.dumps(data))).json()
    assert again == {"status": "duplicate", "id": first["id"]}
    data["meta"] = {**top, "messageId": "outer-1"}  # the top level wins over "inner-1"
    outer = await (await any_receiver.post("/tradecloud/order", orjson.dumps(data))).json()
    assert outer["status"] == "stored"
    data["orderEvent"]["meta"]["messageId"] = "inner-2"
    outer_again = await (await any_receiver.post("/tradecloud/order", orjson.dumps(data))).json()
    assert outer_again == {"status": "duplicate", "id": outer["id"]}
    assert any_receiver.store.count() == 2


async def test_without_message_id_the_bytes_decide(any_receiver: Receiver) -> None:
    data = orjson.loads(ORDER)
    del data["meta"]
    body = orjson.dumps(data)
    for expected in ("stored", "duplicate"):
        answer = await (await any_receiver.post("/tradecloud/order", body)).json()
        assert answer["status"] == expected
    # Nothing else says it is the same message: other bytes are another event.
    answer = await (await any_receiver.post("/tradecloud/order", body + b"\n")).json()
    assert answer["status"] == "stored" and any_receiver.store.count() == 2


async def test_get_notifications_are_never_deduplicated(any_receiver: Receiver) -> None:
    # A GET carries only an id: each one says the object changed again, so each is kept.
    for path in ("/tradecloud/order/o-1", "/tradecloud/order?orderId=o-1") * 2:
        answer = await (await any_receiver.client.get(path, headers=AUTH)).json()
        assert answer["status"] == "stored"
    assert any_receiver.store.count() == 4
