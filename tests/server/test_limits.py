"""Receive-time limits: what no sink could carry is refused with a 400 that names the limit."""

from __future__ import annotations

import asyncio
import ssl
import time

import orjson
import pytest

from tcwebhook.cli.serve_output import text_line
from tcwebhook.config import ServerLimits
from tcwebhook.server.app import RequestLog
from tests.helpers.paths import FIXTURES
from tests.helpers.receiver import TOKEN, MakeReceiver, Receiver

SAMPLES = sorted((FIXTURES / "tradecloud").glob("*-event.json"))


def nested(depth: int) -> bytes:
    """An order event whose deepest value sits ``depth`` objects and arrays down."""
    inner = depth - 2  # the body object and orderEvent are two levels
    deep = b'{"x": ' * (inner // 2) + b"[" * (inner - inner // 2) + b'"leaf"'
    deep += b"]" * (inner - inner // 2) + b"}" * (inner // 2)
    event = (FIXTURES / "tradecloud" / "order-event.json").read_bytes()
    return event.replace(b'"orderEvent": {', b'"orderEvent": {"deep": ' + deep + b", ", 1)


async def test_tradecloud_samples_are_far_inside_the_limits(make_receiver: MakeReceiver) -> None:
    receiver = await make_receiver(limits=ServerLimits(max_json_depth=16, max_id_length=64))
    for sample in SAMPLES:
        path = "/tradecloud/shipment" if "shipment" in sample.name else "/tradecloud/order"
        response = await receiver.post(path, sample.read_bytes())
        assert response.status == 200, (sample.name, await response.text())


@pytest.mark.parametrize("depth", [65, 1000, 20_000])
async def test_too_deep_is_400_naming_the_limit(receiver: Receiver, depth: int) -> None:
    response = await receiver.post("/tradecloud/order", nested(depth))
    assert response.status == 400
    assert "server.limits.max_json_depth (64 levels)" in (await response.json())["error"]


async def test_at_the_depth_limit_is_accepted(receiver: Receiver) -> None:
    response = await receiver.post("/tradecloud/order", nested(64))
    assert response.status == 200, await response.text()


def with_escaped_note(body: bytes, note: str) -> bytes:
    """``body`` with a note as JSON escapes it (non-ASCII as \\u, newlines as \\n) first."""
    escaped = orjson.dumps(note).decode().encode("ascii", "backslashreplace")
    escaped = escaped.replace(b"\\x", b"\\u00")  # latin-1 code points, as \u00XX
    return body.replace(b'"orderEvent": {', b'"orderEvent": {"note": ' + escaped + b", ", 1)


async def test_escapes_and_brackets_in_text_are_no_depth(receiver: Receiver) -> None:
    # A newline or an accent escaped at the end of one string once made the brackets in the
    # next string count as containers: a 400 that Tradecloud never retries.
    event = with_escaped_note(nested(10), "Rundrohr Ø60")
    event = event.replace(b'"leaf"', b'"' + b"[" * 100 + b'"', 1)
    response = await receiver.post("/tradecloud/order", event)
    assert response.status == 200, await response.text()


async def test_too_deep_with_escapes_in_text_is_still_400(receiver: Receiver) -> None:
    response = await receiver.post(
        "/tradecloud/order", with_escaped_note(nested(65), "first line\n")
    )
    assert response.status == 400


@pytest.mark.parametrize(
    ("field", "named"),
    [
        (("meta", "messageId"), "meta.messageId"),
        (("eventName",), "eventName"),
        (("orderEvent", "buyerOrder", "purchaseOrderNumber"), "order or shipment number"),
        (("orderEvent", "orderId"), "order or shipment id"),
    ],
)
async def test_too_long_ids_are_400_naming_the_limit(
    receiver: Receiver, field: tuple[str, ...], named: str
) -> None:
    event = orjson.loads((FIXTURES / "tradecloud" / "order-event.json").read_bytes())
    target = event
    for key in field[:-1]:
        target = target[key]
    target[field[-1]] = "x" * 257
    response = await receiver.post("/tradecloud/order", orjson.dumps(event))
    assert response.status == 400
    error = (await response.json())["error"]
    assert named in error and "server.limits.max_id_length (256 characters)" in error
    assert receiver.store.list_events(limit=5) == []


async def test_too_long_get_notification_id_is_400(receiver: Receiver) -> None:
    response = await receiver.client.get("/tradecloud/order/" + "x" * 300, headers=AUTH_HEADER)
    assert response.status == 400


AUTH_HEADER = {"Authorization": f"Bearer {TOKEN}"}


async def test_a_body_that_does_not_arrive_in_time_is_503(
    make_receiver: MakeReceiver, client_ssl_ctx: ssl.SSLContext
) -> None:
    receiver = await make_receiver(limits=ServerLimits(body_timeout=0.3))
    port = receiver.client.server.port
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=client_ssl_ctx, server_hostname="localhost"
    )
    writer.write(
        b"POST /tradecloud/order HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer "
        + TOKEN.encode()
        + b"\r\nContent-Length: 1000\r\n\r\n{"
    )
    started = time.monotonic()
    answer = b""
    while b"}" not in answer and time.monotonic() - started < 5:
        answer += await asyncio.wait_for(reader.read(1000), 5)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 503")  # a real sender retries it
    assert b"Retry-After" in answer and b"Connection: close" in answer
    assert b"server.limits.body_timeout" in answer
    assert time.monotonic() - started < 2


def test_request_log_escapes_control_characters_and_cuts_long_values(
    capsys: pytest.CaptureFixture[str],
) -> None:
    forged = "OrderIssuedByBuyer\x1b[2J\n12:00:00.000  200  order  Forged"
    text_line(
        RequestLog("2026-01-01T12:00:00.000Z", "POST", "/tradecloud/order", 200, 1.0,
                   "order", forged, "N" * 100_000, "id", 1, 7)
    )  # fmt: skip
    text_line(RequestLog("2026-01-01T12:00:00.000Z", "POST", "/x\x1b]0;t\x07", 400, 1.0))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert "\x1b" not in lines[0] and "\\x1b[2J\\x0a12:00" in lines[0]
    assert len(lines[0]) < 600 and "characters)" in lines[0]
    assert "\x1b" not in lines[1] and "\x07" not in lines[1]
