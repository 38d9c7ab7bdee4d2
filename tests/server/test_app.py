"""The receiver over real HTTPS: routes, auth, status codes, durability rules."""

from __future__ import annotations

import asyncio
import base64
import socket
import sqlite3
import ssl

import orjson
import pytest

from tcwebhook.config import AuthSettings
from tests.helpers.paths import FIXTURES
from tests.helpers.receiver import AUTH, MAX_BODY, MakeReceiver, Receiver

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


async def test_xml_is_415_and_says_so(receiver: Receiver) -> None:
    response = await receiver.post(
        "/tradecloud/order", b"<x/>", {"Content-Type": "application/xml"}
    )
    assert response.status == 415
    assert "tXML" in (await response.json())["error"]


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
