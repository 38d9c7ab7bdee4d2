"""Each connection's deadlines, one at a time and far below the connection cap: a silent client is
closed after the head timeout, a kept-alive one after the idle timeout, and one that keeps sending
requests is never closed for waiting."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tcwebhook.datadir import DEV_CA_FILE
from tests.helpers.serve import start_server

HEAD_TIMEOUT = 1.0
IDLE_TIMEOUT = 4.0  # aiohttp's keep-alive timer closes at this too: longer than head + slack
SLACK = 2.5  # what a loaded machine may add before a deadline is seen to
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, ssl.SSLContext]]:
    data_dir = tmp_path_factory.mktemp("deadlines") / "data"
    process, url = start_server(
        data_dir,
        "--port",
        "0",
        "--no-inspector",
        env={
            "TCWEBHOOK_SERVER_LIMITS_HEAD_TIMEOUT": str(HEAD_TIMEOUT),
            "TCWEBHOOK_SERVER_LIMITS_IDLE_TIMEOUT": str(IDLE_TIMEOUT),
        },
    )
    try:
        port = int(url.split(":")[2].split("/")[0])
        yield port, ssl.create_default_context(cafile=str(data_dir / DEV_CA_FILE))
    finally:
        process.terminate()
        process.wait(timeout=30)


async def _closed_after(reader: asyncio.StreamReader, started: float) -> float:
    """Seconds from ``started`` until the server closes the connection (at most a minute)."""
    try:
        async with asyncio.timeout(60):
            while await reader.read(4096):
                pass
    except (OSError, ssl.SSLError):
        pass  # closed with a reset rather than a goodbye
    return time.monotonic() - started


async def _answer(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    return head + await reader.readexactly(length)


def test_a_silent_client_is_closed_after_the_head_timeout(server: tuple[int, Any]) -> None:
    port, _ = server

    async def scenario() -> float:
        started = time.monotonic()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)  # never starts TLS
        try:
            return await _closed_after(reader, started)
        finally:
            writer.transport.abort()

    seconds = asyncio.run(scenario())
    assert HEAD_TIMEOUT * 0.9 <= seconds < HEAD_TIMEOUT + SLACK, seconds


def test_a_client_sending_its_head_slowly_is_closed_after_the_head_timeout(
    server: tuple[int, Any],
) -> None:
    port, context = server

    async def scenario() -> float:
        started = time.monotonic()
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=context, server_hostname="localhost"
        )
        try:
            writer.write(b"GET /healthz HTTP/1.1\r\nX-a: ")
            while time.monotonic() - started < 60:  # a byte now and then, never the whole head
                try:
                    async with asyncio.timeout(HEAD_TIMEOUT / 4):
                        if not await reader.read(4096):
                            break
                except TimeoutError:
                    writer.write(b"a")
                except (OSError, ssl.SSLError):
                    break
            return time.monotonic() - started
        finally:
            writer.transport.abort()

    seconds = asyncio.run(scenario())
    assert HEAD_TIMEOUT * 0.9 <= seconds < HEAD_TIMEOUT + SLACK, seconds


def test_a_kept_alive_client_is_closed_after_the_idle_timeout(server: tuple[int, Any]) -> None:
    port, context = server

    async def scenario() -> tuple[bytes, float]:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=context, server_hostname="localhost"
        )
        try:
            writer.write(HEALTHZ)
            answer = await _answer(reader)
            return answer, await _closed_after(reader, time.monotonic())
        finally:
            writer.transport.abort()

    answer, seconds = asyncio.run(scenario())
    assert answer.startswith(b"HTTP/1.1 200"), answer
    # Idle, not head: it had made its request, so it may wait the longer of the two.
    assert IDLE_TIMEOUT * 0.9 <= seconds < IDLE_TIMEOUT + SLACK, seconds


def test_a_client_that_keeps_asking_is_never_closed_for_waiting(server: tuple[int, Any]) -> None:
    port, context = server

    async def scenario() -> list[bytes]:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=context, server_hostname="localhost"
        )
        answers = []
        try:
            # Three head timeouts on one connection: each request's head has its own deadline.
            until = time.monotonic() + 3 * HEAD_TIMEOUT
            while time.monotonic() < until:
                writer.write(HEALTHZ)
                answers.append(await _answer(reader))
                await asyncio.sleep(HEAD_TIMEOUT / 2)
        finally:
            writer.transport.abort()
        return answers

    answers = asyncio.run(scenario())
    # Closed in between, the connection would have failed the loop; the count only shows it ran.
    assert len(answers) >= 2 and all(a.startswith(b"HTTP/1.1 200") for a in answers), answers
