"""Basic and static Bearer: the credentials entered in the Tradecloud portal."""

from __future__ import annotations

from tcwebhook.auth import Principal, Refusal, Verdict
from tcwebhook.config import AuthSettings
from tcwebhook.server.auth import Authenticator


class StaticGuard:
    """Compares the header with the configured credentials, in constant time."""

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self._authenticator = Authenticator(settings)
        self._accepted = Principal(self._authenticator.scheme.lower())
        self._refused = Refusal(
            "missing", "missing or wrong credentials", challenge=self._authenticator.challenge
        )
        self._wrong = Refusal(
            "wrong", "missing or wrong credentials", challenge=self._authenticator.challenge
        )

    def check(self, header: str | None) -> Verdict:
        if self._authenticator.check(header):
            return self._accepted
        return self._wrong if header else self._refused

    async def authenticate(self, header: str | None) -> Verdict:
        return self.check(header)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None
