"""Authentication of Tradecloud's requests: Basic or a static Bearer token, in constant time."""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path

from tcwebhook import protocol
from tcwebhook.config import AuthSettings
from tcwebhook.datadir import DEV_TOKEN_FILE, writable, write_private


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
        parsed = protocol.parse_authorization(header)
        if parsed is None or parsed.scheme != self.scheme.lower():
            return False
        if self.scheme == "Basic":
            pair = protocol.basic_pair(parsed.credentials)
            return pair is not None and hmac.compare_digest(pair, self._expected)
        # Raw bytes that are not UTF-8 arrive as surrogates: they must compare unequal, not raise.
        given = parsed.credentials.encode("utf-8", "surrogateescape")
        return hmac.compare_digest(given, self._expected)


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
