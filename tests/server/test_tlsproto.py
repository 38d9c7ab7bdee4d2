"""asyncio's private TLS layer, as the guard uses it: fails loudly on a Python where it changed."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import trustme

from tcwebhook.server import tlsproto


def test_this_python_has_the_sslproto_the_guard_was_written_for() -> None:
    assert tlsproto.incompatibility() is None


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert isinstance(self.transport, asyncio.Transport)
        self.transport.write(data.upper())


class _Raw(asyncio.BufferedProtocol):
    """What the guard does: accept a plain socket, put asyncio's TLS over it ourselves."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.tls: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        loop = asyncio.get_running_loop()
        self.tls = tlsproto.server_tls(loop, _Echo(), self.context, handshake_timeout=5.0)
        self.tls.connection_made(transport)

    def get_buffer(self, sizehint: int) -> Any:
        return self.tls.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> None:
        self.tls.buffer_updated(nbytes)

    def eof_received(self) -> bool | None:
        return self.tls.eof_received()  # type: ignore[no-any-return]

    def connection_lost(self, exc: Exception | None) -> None:
        self.tls.connection_lost(exc)


async def test_a_tls_connection_through_the_adapter_carries_data() -> None:
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Raw(server_context), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_context, server_hostname="localhost"
        )
        writer.write(b"tradecloud")
        assert await asyncio.wait_for(reader.readexactly(10), 10) == b"TRADECLOUD"
        assert writer.get_extra_info("ssl_object").version() in ("TLSv1.2", "TLSv1.3")
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
