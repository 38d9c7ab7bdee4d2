"""Who may deliver webhooks: one ``authenticate(header) -> Principal | Refusal`` per path.

The methods Tradecloud offers (docs/tradecloud.md#webhook-authentication): Basic, a static Bearer
token (``static.py``), and Entra ID access tokens (``entra.py``, with the signing keys in
``keys.py``; order and order-documents webhooks only). Each path of the receiver may use its own.
This package knows nothing of the HTTP server: it gets the ``Authorization`` header, no request.
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


AuthResult = Principal | Refusal


class Authenticator(Protocol):
    """One authentication method with its credentials."""

    settings: AuthSettings

    def check(self, header: str | None) -> AuthResult | None:
        """The result without waiting, or None when only ``authenticate`` can tell."""

    async def authenticate(self, header: str | None) -> AuthResult:
        """The result, fetching what is missing (e.g. signing keys) first."""

    async def start(self) -> None:
        """Begin background work (key refresh); called once the event loop runs."""

    async def stop(self) -> None:
        """End background work."""


def make_authenticator(
    settings: AuthSettings, reuse: Iterable[Authenticator] = ()
) -> Authenticator:
    """The authenticator for ``settings``; one with equal settings is reused (and its key cache)."""
    for authenticator in reuse:
        if authenticator.settings == settings:
            return authenticator
    if settings.type == "entra":
        # Only when configured: PyJWT and its cryptography backend take a while to load.
        from tcwebhook.auth.entra import EntraAuthenticator

        return EntraAuthenticator(settings)
    # Not at the top: auth.static builds on this module's result types.
    from tcwebhook.auth.static import StaticAuthenticator

    return StaticAuthenticator(settings)


class ReceiverAuth:
    """The authenticators of every path; ``replace`` swaps them (SIGHUP) without a moment
    unauthenticated."""

    def __init__(self, settings: Settings) -> None:
        self._by_name: dict[str, Authenticator] = {}
        self._prefixes: tuple[tuple[str, Authenticator], ...] = ()
        self._default: Authenticator
        self.replace(settings)

    def replace(self, settings: Settings) -> list[Authenticator]:
        """Use the credentials of ``settings`` from now on; returns those no longer in use."""
        old = list(self._by_name.values())
        paths = settings.server.paths
        default = make_authenticator(settings.auth, old)
        order = (
            make_authenticator(paths.order_auth, [*old, default]) if paths.order_auth else default
        )
        shipment = (
            make_authenticator(paths.shipment_auth, [*old, default, order])
            if paths.shipment_auth
            else default
        )
        by_name = {"default": default, "order": order, "shipment": shipment}
        self._default = default
        self._prefixes = ((paths.order, order), (paths.shipment, shipment))
        self._by_name = by_name
        in_use = {id(authenticator) for authenticator in by_name.values()}
        return [authenticator for authenticator in old if id(authenticator) not in in_use]

    @property
    def authenticators(self) -> list[Authenticator]:
        unique = {id(authenticator): authenticator for authenticator in self._by_name.values()}
        return list(unique.values())

    def for_path(self, path: str) -> Authenticator:
        for prefix, authenticator in self._prefixes:
            if path == prefix or path.startswith(prefix + "/"):
                return authenticator
        return self._default  # unknown paths: refused like the default before any 404

    async def authenticate(self, path: str, header: str | None) -> AuthResult:
        authenticator = self.for_path(path)
        result = authenticator.check(header)
        return result if result is not None else await authenticator.authenticate(header)

    async def start(self) -> None:
        for authenticator in self.authenticators:
            await authenticator.start()

    async def stop(self) -> None:
        for authenticator in self.authenticators:
            await authenticator.stop()
