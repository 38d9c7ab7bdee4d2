"""Live updates over Server-Sent Events: new rows of the event list, the delivery state of
the rows it shows, and the status.

One watcher per app polls the store for its newest event id (a cheap indexed read, which also
sees events stored by another process) and wakes every open stream when it changes. Each stream
then reads only the events newer than the last one it sent, under its own filters. A stream may
also ``refresh`` every ``REFRESH_SECONDS`` (the event list re-reads the tasks of the rows it
shows, a bounded number, by id); what that gives is sent as a ``states`` event.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import socket
import struct
import termios
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from tcwebhook.errors import StoreUnavailable
from tcwebhook.inspector.security import SECURITY_HEADERS
from tcwebhook.store import Store

POLL_SECONDS = 0.25
STATUS_SECONDS = 1.0
REFRESH_SECONDS = 0.5
HEARTBEAT_SECONDS = 15.0
# A stream ends after this long; the browser reconnects at once (resuming from Last-Event-ID),
# so a forgotten tab never holds a connection forever.
STREAM_LIFETIME = 600.0
MAX_STREAMS = 32
# A client that stops reading is dropped once what it has not taken stays above zero this
# long, so stalled clients cannot hold every stream slot until the lifetime ends...
WRITE_TIMEOUT = 10.0
# ... or at once when that is more than this (many times one message: up to 50 rows).
MAX_UNSENT = 4 * 1024 * 1024
# The socket's send buffer: the kernel's own (grown automatically, to megabytes on loopback)
# absorbed everything a stream sent for minutes, so a stalled client looked like a reader.
SEND_BUFFER = 16 * 1024


class Watcher:
    """Knows the newest event id and wakes the streams when it moves."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.latest = 0
        self._changed = asyncio.Condition()
        self.closing = asyncio.Event()
        self.streams = 0

    async def run(self) -> None:
        while not self.closing.is_set():
            with contextlib.suppress(StoreUnavailable):
                latest = await asyncio.to_thread(self._store.latest_event_id)
                if latest != self.latest:
                    self.latest = latest
                    async with self._changed:
                        self._changed.notify_all()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closing.wait(), POLL_SECONDS)

    async def wait_past(self, seen: int, timeout: float) -> None:
        """Return once an event newer than ``seen`` exists, on closing, or after ``timeout``."""
        if self.latest > seen or self.closing.is_set():
            return
        with contextlib.suppress(TimeoutError):
            async with self._changed:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self.latest > seen or self.closing.is_set()),
                    timeout,
                )

    async def close(self) -> None:
        self.closing.set()
        async with self._changed:
            self._changed.notify_all()


def cleanup_context(
    watcher_key: web.AppKey[Watcher], store: Store
) -> Callable[[web.Application], AsyncIterator[None]]:
    """Start the watcher with the app; stop it (and so every open stream) on shutdown."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        watcher = app[watcher_key] = Watcher(store)
        task = asyncio.create_task(watcher.run())
        yield
        await watcher.close()
        await task

    return context


def end_streams(
    watcher_key: web.AppKey[Watcher],
) -> Callable[[web.Application], Awaitable[None]]:
    """On shutdown, end the live streams at once: the runner waits for open handlers."""

    async def on_shutdown(app: web.Application) -> None:
        await app[watcher_key].close()

    return on_shutdown


async def stream(
    request: web.Request,
    watcher: Watcher,
    next_message: Callable[[int], Awaitable[tuple[int, str | None]]],
    start: int,
    interval: float | None = None,
    refresh: Callable[[], Awaitable[str | None]] | None = None,
) -> web.StreamResponse:
    """An SSE response: ``next_message(position)`` gives ``(position, data or None)``; it is
    asked again whenever a newer event exists (or every ``interval`` seconds). ``refresh()``,
    if given, is asked at least every ``REFRESH_SECONDS``; its data goes out as a ``states``
    event, which does not move the position a reconnecting browser resumes from."""
    if watcher.streams >= MAX_STREAMS:
        raise web.HTTPServiceUnavailable(
            text="too many live views open", headers={"Retry-After": "5"}
        )
    watcher.streams += 1
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", **SECURITY_HEADERS})
    try:
        _small_send_buffer(request)
        await response.prepare(request)
        position = start
        ends = time.monotonic() + STREAM_LIFETIME
        last_write = time.monotonic()
        await _send(response, b"retry: 1000\n\n")
        asked = False
        reader = _Reader(request)
        while not watcher.closing.is_set() and time.monotonic() < ends:
            if reader.stalled():
                raise TimeoutError
            data = None
            # A refresh wakes the loop often: ask for new rows only when there may be some.
            if refresh is None or not asked or watcher.latest > position:
                position, data = await next_message(position)
                asked = True
            if data is not None:
                await _send(response, _frame(position, data))
                last_write = time.monotonic()
            if refresh is not None and (states := await refresh()) is not None:
                await _send(response, _frame(None, states, event="states"))
                last_write = time.monotonic()
            elif time.monotonic() - last_write > HEARTBEAT_SECONDS:
                await _send(response, b": keep-alive\n\n")
                last_write = time.monotonic()
            if interval is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(watcher.closing.wait(), interval)
            else:
                wait = REFRESH_SECONDS if refresh is not None else HEARTBEAT_SECONDS
                await watcher.wait_past(position, wait)
    except (ConnectionResetError, StoreUnavailable):
        pass  # the browser went away, or the store is busy: the browser reconnects
    except TimeoutError:
        # The client stopped reading: drop the connection, or aiohttp's final write would
        # wait on the full window again.
        if request.transport is not None:
            request.transport.abort()
    finally:
        watcher.streams -= 1
    return response


class _Reader:
    """How far the client lags: bytes written to it that it has not taken (in the transport's
    buffer, and in the socket's queue, unacknowledged because the client's window is full)."""

    def __init__(self, request: web.Request) -> None:
        self._transport = request.transport
        self._since: float | None = None  # when the lag was last seen to start

    def stalled(self) -> bool:
        unsent = _unsent(self._transport)
        now = time.monotonic()
        if unsent == 0:
            self._since = None
            return False
        if self._since is None:
            self._since = now
        return unsent > MAX_UNSENT or now - self._since > WRITE_TIMEOUT


def _unsent(transport: asyncio.BaseTransport | None) -> int:
    if transport is None or transport.is_closing():
        return 0
    unsent = 0
    if isinstance(transport, asyncio.WriteTransport):
        unsent = transport.get_write_buffer_size()
    sock = transport.get_extra_info("socket")
    outq = getattr(termios, "TIOCOUTQ", None)  # SIOCOUTQ on Linux
    if sock is not None and outq is not None:
        with contextlib.suppress(OSError, ValueError):
            queued = fcntl.ioctl(sock.fileno(), outq, bytes(4))
            unsent += struct.unpack("i", queued)[0]
    return unsent


def _small_send_buffer(request: web.Request) -> None:
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)


async def _send(response: web.StreamResponse, data: bytes) -> None:
    await asyncio.wait_for(response.write(data), WRITE_TIMEOUT)


def _frame(position: int | None, data: str, event: str | None = None) -> bytes:
    head = f"id: {position}\n" if position is not None else ""
    if event is not None:
        head += f"event: {event}\n"
    lines = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    return f"{head}{lines}\n".encode()
