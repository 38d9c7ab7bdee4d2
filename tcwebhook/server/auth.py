"""Authentication of Tradecloud's requests: Basic or a static Bearer token, in constant time."""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from pathlib import Path

from tcwebhook.config import AuthSettings
from tcwebhook.server.tls import writable, write_private

DEV_TOKEN_FILE = "token"


class Authenticator:
    """Checks an ``Authorization`` header against the configured credentials."""

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

    def check(self, header: str | None) -> bool:
        if not header or not self._expected:
            return False
        scheme, _, credentials = header.strip().partition(" ")
        if scheme.lower() != self.scheme.lower():
            return False
        # Raw bytes that are not UTF-8 arrive as surrogates: they must compare unequal, not raise.
        given = credentials.strip().encode("utf-8", "surrogateescape")
        if self.scheme == "Basic":
            try:
                given = base64.b64decode(given, validate=True)
            except (binascii.Error, ValueError):
                return False
        return hmac.compare_digest(given, self._expected)


def authorization_header(settings: AuthSettings) -> str | None:
    """The header value a client must send, for local tools (replay, the printed curl line)."""
    if settings.type == "bearer":
        return f"Bearer {settings.token}" if settings.token else None
    if settings.username and settings.password:
        pair = f"{settings.username}:{settings.password}".encode()
        return "Basic " + base64.b64encode(pair).decode()
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
