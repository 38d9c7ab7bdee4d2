"""Serving the inspector: beside ``serve`` (one more listener) or alone (``tcwebhook inspect``)."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from tcwebhook.config import Settings
from tcwebhook.errors import ConfigError
from tcwebhook.inspector.app import create_app
from tcwebhook.local import is_loopback
from tcwebhook.server.errorlog import FailureLog
from tcwebhook.server.guard import GuardedSite
from tcwebhook.server.run import bound_port
from tcwebhook.server.tls import CertificateFiles, server_context
from tcwebhook.store import Store, open_store

SHUTDOWN_TIMEOUT = 2.0
KEEPALIVE_TIMEOUT = 15.0  # below server.limits.idle_timeout's default: aiohttp closes first
MAX_LINE_BYTES = 8190  # request line and each header, as aiohttp's default, stated here
MAX_HEADERS = 64


def check(settings: Settings) -> None:
    """Refuse an address other machines can reach unless TLS and a login are configured."""
    inspector = settings.inspector
    if is_loopback(inspector.host):
        return
    if not (inspector.tls.cert and inspector.username and inspector.password):
        raise ConfigError(
            f"refusing to serve the inspector on {inspector.listen}, which is reachable from "
            "other machines, without inspector.tls.cert/key and inspector.username/password; "
            "listen on 127.0.0.1:4041 (serve --inspector, inspect --listen) and use an SSH tunnel "
            "to look from elsewhere"
        )


def url(settings: Settings, port: int) -> str:
    inspector = settings.inspector
    scheme = "https" if inspector.tls.cert else "http"
    host = inspector.host
    if host in ("0.0.0.0", "::"):
        host = "localhost"
    elif ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}/"


@dataclass
class Running:
    """A started inspector: where it answers, and how to stop it."""

    url: str
    runner: web.AppRunner

    async def stop(self) -> None:
        await self.runner.cleanup()


SERVE_ADVICE = (
    "choose another address with --inspector HOST:PORT, or turn it off with --no-inspector"
)
INSPECT_ADVICE = "choose another address with --listen HOST:PORT (or inspector.listen)"


async def start(settings: Settings, store: Store, advice: str = SERVE_ADVICE) -> Running:
    """Bind the inspector and start answering; a ConfigError (ending in ``advice``: the flags
    of the command that started it) when the address is unusable."""
    check(settings)
    inspector = settings.inspector
    # Its own rate-limited lines: a siege of the inspector's port must not flood the log.
    failures = FailureLog()
    runner = web.AppRunner(
        create_app(settings, store, failures),
        access_log=None,
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        keepalive_timeout=KEEPALIVE_TIMEOUT,
        max_line_size=MAX_LINE_BYTES,
        max_field_size=MAX_LINE_BYTES,
        max_headers=MAX_HEADERS,
    )
    await runner.setup()
    ssl_context = None
    if inspector.tls.cert and inspector.tls.key:
        ssl_context = server_context(CertificateFiles(inspector.tls.cert, inspector.tls.key))
    # The receiver's guard: a connection cap (its share of the open-file limit, counted with
    # the receiver's), head and idle timeouts. Without it, idle connections to this port took
    # every file the process had, the receiver's included.
    site = GuardedSite(
        runner,
        ssl_context,
        settings.server.limits,
        failures,
        host=inspector.host,
        port=inspector.port,
        role="inspector",
    )
    try:
        await site.start()
    except (OSError, UnicodeError) as exc:
        await runner.cleanup()
        raise ConfigError(
            f"cannot serve the inspector on {inspector.listen}: "
            f"{getattr(exc, 'strerror', None) or exc}; {advice}"
        ) from None
    return Running(url(settings, bound_port(site) or inspector.port), runner)


def beside_serve(
    on_started: Callable[[str | None, str | None], None],
) -> Callable[[Settings, Store, int], Awaitable[Callable[[], Awaitable[None]]]]:
    """The listener ``serve`` starts next to the receiver (bound to ``receiver_port``).

    ``on_started(url, problem)``: the inspector's URL, or why it could not start; the receiver
    runs either way, because receiving events matters more than looking at them.
    """

    async def start_beside(
        settings: Settings, store: Store, receiver_port: int
    ) -> Callable[[], Awaitable[None]]:
        server = dataclasses.replace(settings.server, port=receiver_port)
        try:
            running = await start(dataclasses.replace(settings, server=server), store)
        except ConfigError as exc:
            on_started(None, str(exc))
            return _nothing
        on_started(running.url, None)
        return running.stop

    return start_beside


async def _nothing() -> None:
    return None


async def inspect_forever(settings: Settings, on_ready: Callable[[str], None]) -> None:
    """``tcwebhook inspect``: serve the page for the configured store until SIGINT/SIGTERM."""
    check(settings)
    store = open_store(settings.store_url)
    try:
        running = await start(settings, store, INSPECT_ADVICE)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        on_ready(running.url)
        try:
            await stop.wait()
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
            await running.stop()
    finally:
        store.close()
