"""Live streams against hostile clients, over real loopback sockets: clients that never read,
more clients than the cap; other pages must keep answering."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from aiohttp.test_utils import TestClient

from tcwebhook.inspector import live
from tcwebhook.inspector.keys import WATCHER
from tcwebhook.store import Store
from tests.helpers.inspector import sample, store_body

STREAMS = 3


async def _stalled_client(port: int) -> tuple[socket.socket, bytes]:
    """A client that asks for every row from the start and then never reads."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    request = (
        f"GET /live/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nLast-Event-ID: 0\r\n\r\n"
    ).encode()
    await loop.sock_sendall(sock, request)
    head = await asyncio.wait_for(loop.sock_recv(sock, 64), 5)
    return sock, head


async def test_a_client_that_never_reads_is_dropped_and_frees_its_slot(
    inspector: TestClient, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "MAX_STREAMS", STREAMS)
    monkeypatch.setattr(live, "WRITE_TIMEOUT", 0.5)
    assert inspector.server.runner is not None
    [site] = inspector.server.runner.sites
    [listening] = site._server.sockets  # type: ignore[union-attr]
    # Accepted sockets inherit a small send buffer: the stall shows after little data.
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    # Rows of ~8 KB each (long target names), so one page of rows is far more than the
    # socket buffers and the writer's own buffer hold together.
    for n in range(40):
        body = sample("order-event.json") | {"meta": {"messageId": f"stall-{n}"}}
        store_body(store, body, tuple(f"{t}" * 2000 for t in range(4)))
    port = listening.getsockname()[1]
    clients = [await _stalled_client(port) for _ in range(STREAMS)]
    try:
        assert all(head.startswith(b"HTTP/1.1 200") for _, head in clients)
        refused = await inspector.get("/live/status")
        assert refused.status == 503 and refused.headers["Retry-After"]
        # Other pages still answer while the stalled streams hold every slot.
        started = time.monotonic()
        assert (await inspector.get("/status")).status == 200
        assert time.monotonic() - started < 2
        deadline = time.monotonic() + 5
        while inspector.app[WATCHER].streams and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert inspector.app[WATCHER].streams == 0, "stalled writers are dropped"
        response = await inspector.get("/live/status")
        assert response.status == 200
        response.close()
    finally:
        for sock, _ in clients:
            sock.close()


async def _client(port: int, rcvbuf: int | None = None) -> socket.socket:
    """A live list from the start, over a socket with the kernel's default buffers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    request = (
        f"GET /live/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nLast-Event-ID: 0\r\n\r\n"
    ).encode()
    await loop.sock_sendall(sock, request)
    return sock


async def test_stalled_readers_are_dropped_though_kernel_buffers_take_their_data(
    inspector: TestClient, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clients that stop reading, with the kernel's default socket buffers (which took every
    write, so a write timeout never fired: 32 such clients held every slot for minutes), are
    dropped; a client that reads is kept."""
    monkeypatch.setattr(live, "MAX_STREAMS", STREAMS + 1)
    monkeypatch.setattr(live, "WRITE_TIMEOUT", 1.0)
    assert inspector.server.runner is not None
    [site] = inspector.server.runner.sites
    [listening] = site._server.sockets  # type: ignore[union-attr]
    port = listening.getsockname()[1]
    stalled = [await _client(port) for _ in range(STREAMS)]
    reader = await _client(port)
    loop = asyncio.get_running_loop()
    received = 0

    async def read() -> None:
        nonlocal received
        while chunk := await loop.sock_recv(reader, 65536):
            received += len(chunk)

    reading = asyncio.create_task(read())
    try:
        # Rows of ~8 KB (long target names): 1.2 MB for each stream, more than the kernel
        # holds for a client that does not read, however its buffers grew.
        for n in range(150):
            body = sample("order-event.json") | {"meta": {"messageId": f"stall-{n}"}}
            await asyncio.to_thread(store_body, store, body, tuple(f"{t}" * 2000 for t in range(4)))
        deadline = time.monotonic() + 20
        while inspector.app[WATCHER].streams > 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert inspector.app[WATCHER].streams == 1, "the stalled streams are dropped"
        await asyncio.sleep(2 * live.WRITE_TIMEOUT)
        assert inspector.app[WATCHER].streams == 1, "the reading client stays"
        assert not reading.done() and received > 1_000_000
    finally:
        reading.cancel()
        for sock in [*stalled, reader]:
            sock.close()


async def test_a_stalled_reader_is_dropped_when_nothing_more_is_sent(
    inspector: TestClient, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that took some rows and stopped, with less left for it than blocks a write
    and no new event: what it has not taken is measured, so it is dropped all the same."""
    monkeypatch.setattr(live, "WRITE_TIMEOUT", 1.0)
    assert inspector.server.runner is not None
    [site] = inspector.server.runner.sites
    [listening] = site._server.sockets  # type: ignore[union-attr]
    for n in range(30):  # rows of ~2.5 KB: about 75 KB, some of it left in the server's buffers
        body = sample("order-event.json") | {"meta": {"messageId": f"quiet-{n}"}}
        store_body(store, body, tuple(f"{t}" * 600 for t in range(4)))
    client = await _client(listening.getsockname()[1], rcvbuf=4096)
    try:
        deadline = time.monotonic() + 3
        while not inspector.app[WATCHER].streams and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert inspector.app[WATCHER].streams == 1
        deadline = time.monotonic() + 10
        while inspector.app[WATCHER].streams and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert inspector.app[WATCHER].streams == 0, "the stalled stream is dropped"
    finally:
        client.close()
