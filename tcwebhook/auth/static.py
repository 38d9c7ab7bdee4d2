"""Basic and static Bearer: the credentials entered in the Tradecloud portal, compared in
constant time, and the bearer token generated for development."""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path

from tcwebhook import protocol
from tcwebhook.auth import AuthResult, Principal, Refusal
from tcwebhook.config import AuthSettings
from tcwebhook.datadir import DEV_TOKEN_FILE, writable, write_private


class StaticCredentials:
    """One configured username/password or bearer token, matched against ``Authorization``."""

    def __init__(self, settings: AuthSettings) -> None:
        self.scheme = "Bearer" if settings.type == "bearer" else "Basic"
        if settings.type == "bearer":
            self._expected = (settings.token or "").encode()
        else:
            self._expected = f"{settings.username}:{settings.password}".encode()
        self.challenge = (
            'Bearer realm="tcwebhook"'
            if settings.type == "bearer"
            else 'Basic realm="tcwebhook", charset="UTF-8"'
        )

    def matches(self, header: str | None) -> bool:
        if not header or not self._expected:
            return False
        parsed = protocol.parse_authorization(header)
        if parsed is None or parsed.scheme != self.scheme.lower():
            return False
        if self.scheme == "Basic":
            pair = protocol.basic_pair(parsed.credentials)
            return pair is not None and hmac.compare_digest(pair, self._expected)
        # Raw bytes that are not UTF-8 arrive as surrogates: they must compare unequal, not raise.
        given = parsed.credentials.encode("utf-8", "surrogateescape")
        return hmac.compare_digest(given, self._expected)


class StaticAuthenticator:
    """The receiver's Basic or static Bearer authentication: accepted or refused at once."""

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self._credentials = StaticCredentials(settings)
        self._accepted = Principal(self._credentials.scheme.lower())
        challenge = self._credentials.challenge
        self._refused = Refusal("missing", "missing or wrong credentials", challenge=challenge)
        self._wrong = Refusal("wrong", "missing or wrong credentials", challenge=challenge)

    def check(self, header: str | None) -> AuthResult:
        if self._credentials.matches(header):
            return self._accepted
        return self._wrong if header else self._refused

    async def authenticate(self, header: str | None) -> AuthResult:
        return self.check(header)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def dev_token(data_dir: Path) -> str:
    """The generated development token: made once (0600), then reused."""
    path = data_dir / DEV_TOKEN_FILE
    if path.is_file():
        token = path.read_text().strip()
        if token:
            return token
    token = secrets.token_urlsafe(32)
    with writable(data_dir):
        write_private(path, token.encode() + b"\n")
    return token
