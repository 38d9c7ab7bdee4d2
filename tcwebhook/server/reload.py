"""``SIGHUP``: take a renewed certificate and changed credentials without dropping a connection.

The new settings are checked exactly as at start-up (``plan``); anything wrong (an unreadable or
mismatched certificate, an invalid config file) is refused with one log line and the server keeps
what it had. A good certificate is loaded into the live TLS context: connections already open
keep their session, new handshakes get the new certificate. Any other changed setting (listen
addresses, the store, sinks, ...) needs a restart: the reload says which, in one log line.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tcwebhook.errors import TcwebhookError
from tcwebhook.server import systemd
from tcwebhook.server.app import RECEIVER_AUTH
from tcwebhook.server.plan import plan

if TYPE_CHECKING:
    from tcwebhook.config import Settings
    from tcwebhook.server.plan import ServePlan

log = logging.getLogger("tcwebhook.reload")

# What a reload applies: the credentials (through the gate) and the certificate files' contents.
RELOADABLE = ("auth", "server.paths.order_auth", "server.paths.shipment_auth", "server.tls.cert",
              "server.tls.key", "source")  # fmt: skip


def needs_restart(running: Settings, new: Settings) -> list[str]:
    """The keys whose new value a reload cannot apply (never their values: some are secrets)."""
    before, after = _flatten(running), _flatten(new)
    changed = {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}
    return sorted(
        key
        for key in changed
        if not any(key == part or key.startswith(part + ".") for part in RELOADABLE)
    )


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"server.port": 8443, ...}``; a list (``sinks``) stays one key."""
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        return {prefix.rstrip("."): value}
    flat: dict[str, Any] = {}
    for f in dataclasses.fields(value):
        flat.update(_flatten(getattr(value, f.name), f"{prefix}{f.name}."))
    return flat


class Reloader:
    """Owns the serving plan after start-up; ``request()`` is the SIGHUP handler."""

    def __init__(
        self,
        serve_plan: ServePlan,
        app: web.Application,
        ssl_context: ssl.SSLContext | None,
        on_reload: Callable[[], None] | None = None,
    ) -> None:
        self.plan = serve_plan
        self._running = serve_plan.settings  # what the listeners, store and workers were built with
        self._app = app
        self._ssl_context = ssl_context
        self._on_reload = on_reload
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def request(self) -> None:
        if self._task is not None and not self._task.done():
            self._again = True  # a second SIGHUP during a reload: reload once more after it
            return
        self._task = asyncio.get_running_loop().create_task(self._reload_until_settled())

    async def wait(self) -> None:
        if self._task is not None:
            await self._task

    async def _reload_until_settled(self) -> None:
        while True:
            self._again = False
            await self.reload()
            if not self._again:
                return

    async def reload(self) -> bool:
        """Apply the current files and environment; False (and a log line) when refused."""

        systemd.reloading()
        if self._on_reload is not None:
            self._on_reload()  # the other worker processes reload themselves
        try:
            settings = self.plan.load_settings() if self.plan.load_settings else self.plan.settings
            new = plan(settings)
            if self._ssl_context is not None and new.certificates is not None:
                self._ssl_context.load_cert_chain(new.certificates.cert, new.certificates.key)
        except (TcwebhookError, OSError, ssl.SSLError) as exc:
            log.error("reload refused: %s; still serving with the previous certificate and "
                      "credentials", exc)  # fmt: skip
            systemd.ready()
            return False
        retired = self._app[RECEIVER_AUTH].replace(new.settings)
        await self._app[RECEIVER_AUTH].start()
        for authenticator in retired:
            await authenticator.stop()
        self.plan = new.with_loader(self.plan.load_settings)
        certificate = new.certificates.cert if new.certificates else "(TLS at the proxy)"
        log.info("reloaded: certificate %s and credentials", certificate)
        pending = needs_restart(self._running, new.settings)
        if pending:
            log.warning("reload cannot change %s: restart tcwebhook serve to apply (until then it "
                        "runs with the previous values)", ", ".join(pending))  # fmt: skip
        systemd.ready()
        return True
