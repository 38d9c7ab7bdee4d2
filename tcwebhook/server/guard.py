"""Every TCP connection of the receiver and of the inspector, counted and on a deadline.

aiohttp and asyncio bound neither the number of connections nor the time one may take to send a
request head: idle and slowloris clients (TLS ones need no credentials) held file descriptors
until the process could open no more, not even its database. Here each accepted socket is
wrapped before TLS starts, so that

- at most ``max_connections`` are open; a new one beyond the cap closes the oldest connection that
  is not in a request (never-finished handshakes and heads first in line), or is refused if all
  are in a request;
- the TLS handshake and the request head must complete within ``head_timeout`` of the accept;
- a kept-alive connection may wait ``idle_timeout`` for its next request, then ``head_timeout``
  from the first byte of it.

The listeners of one process share its open-file limit: the receiver's cap is lowered by the
inspector's share and a share kept for the metrics listener, so that every listener at its cap
still leaves files for the store (``connection_cap``, ``inspector_cap``).

A connection inside a request (handler running) has no deadline here: reading the body has its
own timeout in the app, and the store answers within its busy timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import socket
import ssl
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from aiohttp import web

from tcwebhook.config import ServerLimits
from tcwebhook.requestlog import explain_handshake, handshake_record
from tcwebhook.server.app import REQUEST_RECORDER
from tcwebhook.server.errorlog import FailureLog
from tcwebhook.server.tlsproto import remember_server_names, server_name, server_tls
from tcwebhook.store import utc_now

# A failed TLS handshake, told to the request log: (error or None, client, seconds, SNI name).
HandshakeListener = Callable[[BaseException | None, str | None, float, str | None], None]

UNIX_SOCKET_MODE = 0o660

# File descriptors kept back from the connection cap: store, WAL, sinks' pipes and sockets, logs.
RESERVED_FILES = 64
FILE_LIMIT_CEILING = 1 << 20


def raise_file_limit() -> int:
    """Raise the soft open-file limit towards the hard one; return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = FILE_LIMIT_CEILING if hard == resource.RLIM_INFINITY else min(hard, FILE_LIMIT_CEILING)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass  # keep the soft limit; the cap below fits it
    return FILE_LIMIT_CEILING if soft == resource.RLIM_INFINITY else soft


# The inspector's share of the connections: one person's browser, its pages and live streams
# (at most 32 of those) need a few dozen.
INSPECTOR_CONNECTIONS = 64
# Kept back for the metrics listener (a scraper or two).
METRICS_CONNECTIONS = 16


def connection_files(file_limit: int) -> int:
    """The files one process may spend on connections, all listeners together."""
    return max(3, file_limit - max(RESERVED_FILES, file_limit // 8))


def inspector_cap(file_limit: int) -> int:
    """The inspector listener's connection cap: its share of ``connection_files``."""
    return max(1, min(INSPECTOR_CONNECTIONS, connection_files(file_limit) // 8))


def metrics_share(file_limit: int) -> int:
    return max(1, min(METRICS_CONNECTIONS, connection_files(file_limit) // 16))


def connection_cap(configured: int, file_limit: int) -> int:
    """``server.limits.max_connections``, lowered to leave files for everything else: the
    store, the sinks, and the inspector's and the metrics listener's connections, so that
    all listeners at their caps together still fit below the open-file limit."""
    others = inspector_cap(file_limit) + metrics_share(file_limit)
    return max(1, min(configured, connection_files(file_limit) - others))


class ConnectionGuard:
    """The protocol factory for ``loop.create_server``: TLS (or, behind a local proxy, plain
    HTTP) over aiohttp, under the limits."""

    def __init__(
        self,
        server: web.Server,
        ssl_context: ssl.SSLContext | None,
        limits: ServerLimits,
        max_connections: int,
        failures: FailureLog,
        label: str = "",
        on_handshake_failed: HandshakeListener | None = None,
    ) -> None:
        self._server = server
        self.on_handshake_failed = on_handshake_failed if ssl_context is not None else None
        self.label = label  # what the log lines start with: "" (the receiver), "inspector: "
        self._ssl_context = ssl_context
        self.limits = limits
        self.max_connections = max_connections
        self.failures = failures
        self.open = 0
        # Connections not in a request, in the order they started waiting: eviction order.
        self._waiting: OrderedDict[_Connection, None] = OrderedDict()
        self._by_handler: dict[int, _Connection] = {}
        self._sweep: asyncio.TimerHandle | None = None
        self._wrap_request_handler()

    def __call__(self) -> _Connection:
        return _Connection(self)

    def _wrap_request_handler(self) -> None:
        # The handler runs from a complete request head to the response: the one span in which a
        # connection has no deadline here and cannot be evicted.
        handle: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]] = (
            self._server.request_handler
        )
        by_handler = self._by_handler

        async def guarded(request: web.BaseRequest) -> web.StreamResponse:
            connection = by_handler.get(id(request.protocol))
            if connection is None:
                return await handle(request)
            connection.busy()
            try:
                return await handle(request)
            finally:
                connection.idle()

        self._server.request_handler = guarded

    def _sweep_soon(self) -> None:
        """Look for waiting connections past their deadlines in a moment (while any wait).

        One timer for all connections rather than one per connection: a timer set and cancelled
        twice per request was a measurable part of a request's cost
        (docs/performance-notes.md#16-one-deadline-sweep-for-all-connections). A deadline is
        kept at most one tick late.
        """
        if self._sweep is None:
            self._sweep = asyncio.get_running_loop().call_later(self._tick(), self._sweep_now)

    def _tick(self) -> float:
        shortest = min(self.limits.head_timeout, self.limits.idle_timeout)
        return min(max(shortest / 10, 0.05), 0.5)

    def _sweep_now(self) -> None:
        self._sweep = None
        now = asyncio.get_running_loop().time()
        for connection in [c for c in self._waiting if c._expires <= now]:
            connection._expired()
        if self._waiting:
            self._sweep_soon()

    def _admit(self) -> bool:
        self.open += 1
        if self.open <= self.max_connections:
            return True
        if self._waiting:
            oldest, _ = self._waiting.popitem(last=False)
            oldest.close()
            self.failures.report(
                f"{self.label}connection cap ({self.max_connections}) reached: closing the oldest "
                "connections that are not in a request"
            )
            return True
        self.failures.report(
            f"{self.label}connection cap ({self.max_connections}) reached and every connection "
            "is in a request: refusing new connections"
        )
        return False


class _PlainStream:
    """What the TLS layer is to a connection, for plain HTTP: bytes straight to aiohttp."""

    __slots__ = ("_buffer", "_protocol")

    def __init__(self, protocol: Any) -> None:
        self._protocol = protocol
        self._buffer = bytearray(64 * 1024)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._protocol.connection_made(transport)

    def get_buffer(self, sizehint: int) -> bytearray:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        self._protocol.data_received(bytes(memoryview(self._buffer)[:nbytes]))

    def eof_received(self) -> bool | None:
        return self._protocol.eof_received()

    def pause_writing(self) -> None:
        self._protocol.pause_writing()

    def resume_writing(self) -> None:
        self._protocol.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._protocol.connection_lost(exc)


class _Connection(asyncio.BufferedProtocol):
    """One accepted socket: TLS (asyncio's own SSLProtocol) over aiohttp's RequestHandler."""

    __slots__ = (
        "_accepted",
        "_expires",
        "_guard",
        "_handler",
        "_state",
        "_timed_out",
        "_tls",
        "_transport",
    )

    def __init__(self, guard: ConnectionGuard) -> None:
        self._guard = guard
        self._transport: asyncio.Transport | None = None
        self._tls: Any = None
        self._handler: Any = None
        self._expires = 0.0  # loop time by which the connection must stop waiting
        self._state = "new"  # new → head → busy → idle → head → busy … → closed
        self._accepted = 0.0
        self._timed_out = False

    # ---- raw socket events, passed on to TLS -------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        guard = self._guard
        if not guard._admit():
            self._state = "closed"
            transport.abort()
            return
        loop = asyncio.get_running_loop()
        self._accepted = loop.time()
        self._handler = guard._server()
        guard._by_handler[id(self._handler)] = self
        if guard._ssl_context is None:  # plain HTTP from a trusted local proxy
            self._tls = _PlainStream(self._handler)
        else:
            # asyncio's own TLS layer, as create_server(ssl=...) would build it, but under the
            # guard's count and deadline.
            self._tls = server_tls(
                loop, self._handler, guard._ssl_context, guard.limits.head_timeout
            )
        self._wait("head", guard.limits.head_timeout)
        self._tls.connection_made(transport)

    def get_buffer(self, sizehint: int) -> Any:
        return self._tls.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> None:
        if self._state == "idle":  # the next request begins: its head has head_timeout
            self._wait("head", self._guard.limits.head_timeout)
        self._tls.buffer_updated(nbytes)

    def eof_received(self) -> bool | None:
        return self._tls.eof_received() if self._tls is not None else None

    def pause_writing(self) -> None:
        self._tls.pause_writing()

    def resume_writing(self) -> None:
        self._tls.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        guard = self._guard
        guard.open -= 1
        guard._waiting.pop(self, None)
        if self._handler is not None:
            guard._by_handler.pop(id(self._handler), None)
        self._state = "closed"
        if self._tls is not None:
            if guard.on_handshake_failed is not None:
                self._tell_handshake_failed(exc)
            self._tls.connection_lost(exc)
            self._tls = None

    def _tell_handshake_failed(self, exc: Exception | None) -> None:
        """A TLS connection that ends before aiohttp ever got it had a failed handshake."""
        if self._handler is None or self._handler.transport is not None:
            return  # refused by the cap, or the handshake completed
        listener = self._guard.on_handshake_failed
        assert listener is not None
        peer = self._transport.get_extra_info("peername") if self._transport else None
        client = str(peer[0]) if isinstance(peer, tuple) and peer else None
        error: BaseException | None = TimeoutError() if self._timed_out else exc
        seconds = asyncio.get_running_loop().time() - self._accepted
        try:
            listener(error, client, seconds, server_name(self._tls))
        except Exception:  # the request log must never break a connection's end
            self._guard.failures.report(f"{self._guard.label}the request log failed")

    # ---- request boundaries, from the wrapped request handler --------------------------------

    def busy(self) -> None:
        if self._state == "closed":
            return
        self._guard._waiting.pop(self, None)
        self._state = "busy"

    def idle(self) -> None:
        if self._state == "busy":
            self._wait("idle", self._guard.limits.idle_timeout)

    def close(self) -> None:
        if self._transport is not None and self._state != "closed":
            self._state = "closed"
            self._transport.abort()

    # ---- deadlines ---------------------------------------------------------------------------

    def _wait(self, state: str, timeout: float) -> None:
        self._state = state
        guard = self._guard
        self._expires = asyncio.get_running_loop().time() + timeout
        waiting = guard._waiting
        waiting[self] = None
        waiting.move_to_end(self)
        guard._sweep_soon()

    def _expired(self) -> None:
        limits = self._guard.limits
        if self._state == "head":
            what = (
                "no complete request head within server.limits.head_timeout "
                f"({limits.head_timeout:g} s)"
            )
        else:
            what = f"idle longer than server.limits.idle_timeout ({limits.idle_timeout:g} s)"
        self._guard.failures.report(f"{self._guard.label}closed connections: {what}")
        self._guard._waiting.pop(self, None)
        self._timed_out = True
        self.close()


class GuardedSite(web.BaseSite):
    """aiohttp's TCPSite/SockSite, with every connection under a ``ConnectionGuard``."""

    __slots__ = ("_accept_batch", "_guard", "_host", "_path", "_port", "_sock")

    def __init__(
        self,
        runner: web.BaseRunner,
        ssl_context: ssl.SSLContext | None,
        limits: ServerLimits,
        failures: FailureLog,
        *,
        host: str | None = None,
        port: int | None = None,
        sock: socket.socket | None = None,
        path: str | None = None,
        backlog: int = 1024,
        role: Literal["receiver", "inspector", "metrics"] = "receiver",
    ) -> None:
        """``role``: whose listener this is. The inspector's and the metrics listener's are
        capped at their shares of the open-file limit (``inspector_cap``, ``metrics_share``),
        the receiver's at ``connection_cap``, which leaves room for both."""
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        assert runner.server is not None
        file_limit = raise_file_limit()
        if role == "inspector":
            cap = inspector_cap(file_limit)
        elif role == "metrics":
            cap = metrics_share(file_limit)
        else:
            cap = connection_cap(limits.max_connections, file_limit)
        label = "" if role == "receiver" else f"{role}: "
        listener = None
        if role == "receiver" and ssl_context is not None and isinstance(runner, web.AppRunner):
            listener = handshake_listener(runner.app)
            if listener is not None:
                remember_server_names(ssl_context)
        self._guard = ConnectionGuard(
            runner.server, ssl_context, limits, cap, failures, label, listener
        )
        # asyncio accepts up to ``backlog`` sockets in one go, all open before the guard sees
        # the first: beyond the cap, that burst ran the process out of descriptors.
        self._accept_batch = max(4, min(128, (file_limit - cap) // 4))
        self._host, self._port, self._sock, self._path = host, port, sock, path

    @property
    def name(self) -> str:
        if self._sock is not None:
            return "socket"
        if self._path is not None:
            return f"unix:{self._path}"
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://{self._host}:{self._port}"

    @property
    def guard(self) -> ConnectionGuard:
        return self._guard

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        if self._sock is not None:
            server = await loop.create_server(
                self._guard, sock=self._sock, backlog=self._accept_batch
            )
        elif self._path is not None:  # behind a local reverse proxy
            # asyncio replaces a socket file left behind by a crash.
            server = await loop.create_unix_server(
                self._guard, self._path, backlog=self._accept_batch
            )
            # The owner and its group (the proxy's) may connect, whatever the umask says.
            os.chmod(self._path, UNIX_SOCKET_MODE)
        else:
            server = await loop.create_server(
                self._guard,
                self._host,
                self._port or 0,
                backlog=self._accept_batch,
                reuse_address=True,
            )
        for sock in server.sockets:  # the kernel's queue stays long: only the batch is short
            getattr(sock, "_sock", sock).listen(self._backlog)  # asyncio wraps each socket
        self._server = server

    async def stop(self) -> None:
        await super().stop()
        if self._path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path)


def handshake_listener(app: web.Application) -> HandshakeListener | None:
    """What tells the receiver's request log of a failed handshake; None when it is off."""
    recorder = app.get(REQUEST_RECORDER)
    if recorder is None:
        return None

    def failed(
        error: BaseException | None, client: str | None, seconds: float, name: str | None
    ) -> None:
        failure = explain_handshake(error or ConnectionResetError(), server_name=name)
        recorder.offer(
            handshake_record(failure, time=utc_now(), client=client, duration_ms=seconds * 1000)
        )

    return failed
