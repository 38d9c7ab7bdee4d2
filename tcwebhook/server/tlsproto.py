"""The one place tcwebhook uses asyncio's private TLS layer, ``asyncio.sslproto``.

``loop.create_server(ssl=...)`` starts the TLS handshake before any code of ours sees the
socket, so it could be neither counted nor put on a deadline (server/guard.py). The guard
therefore builds asyncio's own ``SSLProtocol`` over each accepted socket itself, exactly as
``create_server`` does. That class is not public API: what we rely on is checked by
``incompatibility()`` when serve starts and by tests/server/test_tlsproto.py, so a Python whose
``sslproto`` changed fails loudly, not subtly. Tested on CPython 3.11 (docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import inspect
import ssl
from asyncio import sslproto

# What the guard calls on the protocol, and the constructor arguments it passes.
_METHODS = (
    "connection_made",
    "get_buffer",
    "buffer_updated",
    "eof_received",
    "pause_writing",
    "resume_writing",
    "connection_lost",
)
_PARAMETERS = (
    "loop",
    "app_protocol",
    "sslcontext",
    "waiter",
    "server_side",
    "ssl_handshake_timeout",
)


def incompatibility() -> str | None:
    """None when this Python's ``sslproto`` is what the guard was written for; else what differs."""
    protocol = getattr(sslproto, "SSLProtocol", None)
    if protocol is None:
        return "asyncio.sslproto.SSLProtocol is gone"
    missing = [name for name in _METHODS if not callable(getattr(protocol, name, None))]
    parameters = inspect.signature(protocol.__init__).parameters
    missing += [f"argument {name}" for name in _PARAMETERS if name not in parameters]
    if not isinstance(getattr(protocol, "max_size", None), int):
        missing.append("max_size")
    if missing:
        return "asyncio.sslproto.SSLProtocol has no " + ", ".join(missing)
    return None


def server_tls(
    loop: asyncio.AbstractEventLoop,
    app_protocol: asyncio.BaseProtocol,
    context: ssl.SSLContext,
    handshake_timeout: float,
) -> asyncio.BufferedProtocol:
    """asyncio's server-side TLS over ``app_protocol``, as ``create_server(ssl=...)`` builds it."""
    return sslproto.SSLProtocol(
        loop,
        app_protocol,
        context,
        None,  # type: ignore[arg-type]  # no waiter: its typing wants a future, None is checked
        server_side=True,
        ssl_handshake_timeout=handshake_timeout,  # type: ignore[arg-type]
    )


def limit_read_buffer(size: int) -> None:
    """asyncio gives every TLS connection a 256 KiB read buffer, touched at once: 1,000 idle
    keep-alive connections would hold 256 MB, while a TLS record carries at most 16 KiB."""
    sslproto.SSLProtocol.max_size = size


_SERVER_NAME = "tcwebhook_server_name"  # set on each connection's SSLObject by the SNI callback


def remember_server_names(context: ssl.SSLContext) -> None:
    """Keep the server name (SNI) each client asks for on its connection, so a failed handshake
    can say which name the client wanted. Leaves a context that has its own callback alone."""
    if context.sni_callback is not None:
        return

    def remember(connection: ssl.SSLObject | ssl.SSLSocket, name: str | None, _: object) -> None:
        setattr(connection, _SERVER_NAME, name)

    context.sni_callback = remember


def server_name(tls: object) -> str | None:
    """The SNI name the client of this ``server_tls`` protocol sent, if known."""
    ssl_object = getattr(tls, "_sslobj", None)  # asyncio's SSLObject of the connection
    name = getattr(ssl_object, _SERVER_NAME, None)
    return name if isinstance(name, str) else None
