"""Who may deliver webhooks: one ``authenticate(request) -> Principal | Refusal`` per path.

The methods Tradecloud offers (docs/tradecloud.md#webhook-authentication): Basic, a static Bearer
token, and Entra ID access tokens (order and order-documents webhooks only). Each path of the
receiver may use its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from tcwebhook.config import AuthSettings, Settings


@dataclass(frozen=True)
class Principal:
    """An authenticated sender; ``subject`` is safe to log (never a credential)."""

    scheme: str
    subject: str | None = None


@dataclass(frozen=True)
class Refusal:
    """Why a request is turned away; ``reason`` is a short fixed word, usable as a metric label."""

    reason: str
    message: str
    status: int = 401
    challenge: str | None = None  # WWW-Authenticate, for 401
    retry_after: int | None = None  # seconds, for 503


Verdict = Principal | Refusal


class Guard(Protocol):
    """One authentication method with its credentials."""

    settings: AuthSettings

    def check(self, header: str | None) -> Verdict | None:
        """The verdict without waiting, or None when only ``authenticate`` can tell."""

    async def authenticate(self, header: str | None) -> Verdict:
        """The verdict, fetching what is missing (e.g. signing keys) first."""

    async def start(self) -> None:
        """Begin background work (key refresh); called once the event loop runs."""

    async def stop(self) -> None:
        """End background work."""


def make_guard(settings: AuthSettings, reuse: Iterable[Guard] = ()) -> Guard:
    """The guard for ``settings``; one with equal settings is reused (and its key cache)."""
    for guard in reuse:
        if guard.settings == settings:
            return guard
    if settings.type == "entra":
        from tcwebhook.auth.entra import EntraGuard

        return EntraGuard(settings)
    from tcwebhook.auth.static import StaticGuard

    return StaticGuard(settings)


class Gate:
    """The guards of every path; ``replace`` swaps them (SIGHUP) without a moment unguarded."""

    def __init__(self, settings: Settings) -> None:
        self._guards: dict[str, Guard] = {}
        self._prefixes: tuple[tuple[str, Guard], ...] = ()
        self._default: Guard
        self.replace(settings)

    def replace(self, settings: Settings) -> list[Guard]:
        """Use the credentials of ``settings`` from now on; returns guards no longer in use."""
        old = list(self._guards.values())
        paths = settings.server.paths
        default = make_guard(settings.auth, old)
        order = make_guard(paths.order_auth, [*old, default]) if paths.order_auth else default
        shipment = (
            make_guard(paths.shipment_auth, [*old, default, order])
            if paths.shipment_auth
            else default
        )
        guards = {"default": default, "order": order, "shipment": shipment}
        self._default = default
        self._prefixes = ((paths.order, order), (paths.shipment, shipment))
        self._guards = guards
        in_use = {id(guard) for guard in guards.values()}
        return [guard for guard in old if id(guard) not in in_use]

    @property
    def guards(self) -> list[Guard]:
        unique: dict[int, Guard] = {id(guard): guard for guard in self._guards.values()}
        return list(unique.values())

    def guard_for(self, path: str) -> Guard:
        for prefix, guard in self._prefixes:
            if path == prefix or path.startswith(prefix + "/"):
                return guard
        return self._default  # unknown paths: refused like the default before any 404

    async def authenticate(self, path: str, header: str | None) -> Verdict:
        guard = self.guard_for(path)
        verdict = guard.check(header)
        return verdict if verdict is not None else await guard.authenticate(header)

    async def start(self) -> None:
        for guard in self.guards:
            await guard.start()

    async def stop(self) -> None:
        for guard in self.guards:
            await guard.stop()
