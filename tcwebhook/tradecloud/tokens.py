"""Tradecloud API authentication: login, refresh before the JWT ``exp``, the 0600 token cache.

The rules are those of docs/tradecloud.md#api-authentication. No token or password ever goes into
an exception.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yarl import URL

from tcwebhook import protocol
from tcwebhook.datadir import DIR_MODE, SECRET_MODE
from tcwebhook.errors import ApiAccessDenied, ApiCredentialsError, ApiError
from tcwebhook.tradecloud.transport import Answer, Transport, endpoint_url

# Refresh five minutes before the access token's `exp`.
REFRESH_MARGIN_SECONDS = 300.0
# Refresh tokens live 24 hours; used when a refresh token carries no readable `exp`.
REFRESH_TOKEN_LIFETIME_SECONDS = 24 * 3600.0


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim (epoch seconds) of a JWT, read without verifying it; None if unreadable."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, binascii.Error):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    return float(exp)


@dataclass(frozen=True)
class Tokens:
    """An access and refresh token pair with their expiry instants (epoch seconds)."""

    access: str
    refresh: str
    access_expires: float | None
    refresh_expires: float | None

    @classmethod
    def issued(cls, access: str, refresh: str, now: float) -> Tokens:
        refresh_expires = jwt_expiry(refresh) or now + REFRESH_TOKEN_LIFETIME_SECONDS
        return cls(access, refresh, jwt_expiry(access), refresh_expires)

    def access_usable(self, now: float, margin: float) -> bool:
        # Without a readable `exp` use the token until the API answers 401.
        return self.access_expires is None or self.access_expires - margin > now

    def refresh_usable(self, now: float) -> bool:
        return self.refresh_expires is None or self.refresh_expires > now + 5

    def to_json(self) -> dict[str, Any]:
        return {
            "access": self.access,
            "refresh": self.refresh,
            "accessExpires": self.access_expires,
            "refreshExpires": self.refresh_expires,
        }

    @classmethod
    def from_json(cls, data: Any) -> Tokens | None:
        if not isinstance(data, dict):
            return None
        access, refresh = data.get("access"), data.get("refresh")
        if not (isinstance(access, str) and access and isinstance(refresh, str) and refresh):
            return None
        expiries = [data.get("accessExpires"), data.get("refreshExpires")]
        if any(
            v is not None and (isinstance(v, bool) or not isinstance(v, int | float))
            for v in expiries
        ):
            return None
        return cls(access, refresh, expiries[0], expiries[1])


class TokenCache:
    """Keeps tokens in one JSON file (mode 0600), one entry per user and API base URL.

    A missing, unreadable or corrupt file counts as empty: the client just logs in again.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self, key: str) -> Tokens | None:
        return Tokens.from_json(self._read().get(key))

    def save(self, key: str, tokens: Tokens | None) -> None:
        entries = self._read()
        if tokens is None:
            if key not in entries:
                return
            entries.pop(key)
            if not entries:  # the last session ended: leave no token file behind
                with contextlib.suppress(OSError):
                    self.path.unlink()
                return
        else:
            entries[key] = tokens.to_json()
        # A cache that cannot be written only costs a login next time.
        with contextlib.suppress(OSError):
            self._write(entries)

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, entries: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, SECRET_MODE)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(entries, handle)
        os.chmod(temporary, SECRET_MODE)
        os.replace(temporary, self.path)


def bearer_headers(token: str, body: bytes | None = None) -> dict[str, str]:
    """The headers of a data call with ``token``; a JSON content type when there is a body."""
    headers = {"Authorization": protocol.bearer_header(token), "Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    return headers


class TokenManager:
    """Keeps one user's access token valid: from the cache, by refreshing, or by logging in.

    One token manager may serve many tasks: renewing is serialised, so concurrent calls that get a
    401 renew the tokens once.
    """

    def __init__(
        self,
        transport: Transport,
        base_url: str,
        username: str | None,
        password: str | None,
        *,
        cache: TokenCache | None = None,
        refresh_margin: float = REFRESH_MARGIN_SECONDS,
    ) -> None:
        self.transport = transport
        self.base_url = base_url
        self.username = username or None
        self._password = password or None
        self._cache = cache
        self._refresh_margin = refresh_margin
        self._lock = asyncio.Lock()
        self._tokens: Tokens | None = None
        self._tokens_loaded = False

    @property
    def cache_key(self) -> str:
        return f"{self.username or ''} {self.base_url}"

    @property
    def tokens(self) -> Tokens | None:
        """The current tokens (read from the cache the first time), None when logged out."""
        if not self._tokens_loaded:
            self._tokens_loaded = True
            if self._cache is not None and self.username:
                self._tokens = self._cache.load(self.cache_key)
        return self._tokens

    @tokens.setter
    def tokens(self, tokens: Tokens | None) -> None:
        self._tokens, self._tokens_loaded = tokens, True
        if self._cache is not None and self.username:
            self._cache.save(self.cache_key, tokens)

    async def forget(self) -> Tokens | None:
        """Drop the tokens here and in the cache; the ones dropped, to end their session."""
        async with self._lock:
            tokens = self.tokens
            self.tokens = None
        return tokens

    async def access_token(self) -> str:
        """An access token valid for at least the refresh margin, when its ``exp`` is readable."""
        async with self._lock:
            tokens = self.tokens
            if tokens is not None and tokens.access_usable(time.time(), self._refresh_margin):
                return tokens.access
            return await self._renew_locked(tokens)

    async def authorized(
        self, method: str, url: URL, what: str, body: bytes | None = None
    ) -> Answer:
        """A data call with Bearer; on 401 renew the tokens and retry once."""
        token = await self.access_token()
        answer = await self.transport.send(
            method, url, bearer_headers(token, body), what, body=body
        )
        if answer.status == 401:
            token = await self._renew(token)
            answer = await self.transport.send(
                method, url, bearer_headers(token, body), what, body=body
            )
            if answer.status == 401:
                raise ApiCredentialsError(
                    f"Tradecloud rejected a fresh access token for {what} (401); check that "
                    f"{self.username} is an integration user and run 'tcwebhook logout'"
                )
        return answer

    async def _renew(self, rejected: str) -> str:
        """A new access token after ``rejected`` got a 401 (unless another task renewed it)."""
        async with self._lock:
            tokens = self.tokens
            if tokens is not None and tokens.access != rejected:
                return tokens.access
            return await self._renew_locked(tokens)

    async def _renew_locked(self, tokens: Tokens | None) -> str:
        renewed = None
        if tokens is not None and tokens.refresh_usable(time.time()):
            renewed = await self._refresh(tokens.refresh)
        if renewed is None:
            renewed = await self._login()
        self.tokens = renewed
        return renewed.access

    async def _login(self) -> Tokens:
        if not self.username or not self._password:
            raise ApiCredentialsError(
                "no Tradecloud credentials: export TRADECLOUD_USERNAME and TRADECLOUD_PASSWORD "
                "(the integration user's email and password) or set tradecloud.username and "
                "tradecloud.password in the config file"
            )
        if ":" in self.username:
            raise ApiCredentialsError(
                "the Tradecloud username must not contain ':'; use the integration user's email"
            )
        authorization = protocol.basic_header(self.username, self._password)
        answer = await self.transport.send(
            "GET",
            endpoint_url(self.base_url, "authentication", "login"),
            {"Authorization": authorization, "Accept": "application/json"},
            "login",
        )
        if answer.status == 401:
            raise ApiCredentialsError(
                f"Tradecloud rejected the login of {self.username} at {self.base_url} (401): "
                "check the username and password (TRADECLOUD_USERNAME / TRADECLOUD_PASSWORD or "
                "tradecloud.username / tradecloud.password)"
            )
        if answer.status == 403:
            raise ApiAccessDenied(
                f"Tradecloud does not let {self.username} use the API (403): the user needs the "
                "integration role, which support@tradecloud1.com grants"
            )
        if answer.status != 200:
            raise ApiError(
                f"Tradecloud answered HTTP {answer.status} to the login{answer.excerpt()}"
            )
        tokens = _issued(answer)
        if tokens is None:
            raise ApiError(
                "Tradecloud's login answer carried no Set-Authorization / Set-Refresh-Token "
                f"headers; is {self.base_url} the Tradecloud API v2 base URL?"
            )
        return tokens

    async def _refresh(self, refresh_token: str) -> Tokens | None:
        """New tokens for a refresh token (sent alone); None when Tradecloud refuses it."""
        answer = await self.transport.send(
            "GET",
            endpoint_url(self.base_url, "authentication", "refresh"),
            {"Refresh-Token": refresh_token, "Accept": "application/json"},
            "token refresh",
        )
        return _issued(answer) if answer.status == 200 else None


def _issued(answer: Answer) -> Tokens | None:
    """The tokens a login or refresh answer carries in its headers; None if one is missing."""
    access = _strip_bearer(answer.headers.get("Set-Authorization"))
    refresh = _strip_bearer(answer.headers.get("Set-Refresh-Token"))
    if access is None or refresh is None:
        return None
    return Tokens.issued(access, refresh, time.time())


def _strip_bearer(value: str | None) -> str | None:
    return None if value is None else protocol.without_bearer(value) or None
