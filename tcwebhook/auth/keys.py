"""The Entra tenant's signing keys: fetched off the request path, cached, refreshed.

Keys come from the ``jwks_uri`` of the tenant's OpenID configuration. They are fetched when the
server starts, then every ``REFRESH_EVERY`` seconds, and once more when a token names a key id we
do not know (Entra rotates keys), at most once per ``UNKNOWN_KID_REFRESH_EVERY`` seconds so that
forged key ids cannot make us hammer the key server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
from jwt import PyJWK
from jwt.exceptions import PyJWKError

from tcwebhook.config import AuthSettings
from tcwebhook.errors import ConfigError
from tcwebhook.trust import client_context

log = logging.getLogger("tcwebhook.auth")

REFRESH_EVERY = 6 * 3600.0
RETRY_EVERY = 30.0  # after a failed fetch
UNKNOWN_KID_REFRESH_EVERY = 300.0
FETCH_TIMEOUT = 10.0
MAX_DOCUMENT_BYTES = 1024 * 1024


class KeysUnavailable(Exception):
    """The signing keys could not be fetched (the reason is in the message, never a secret)."""


def openid_config_url(settings: AuthSettings) -> str:
    if settings.openid_config_url:
        return settings.openid_config_url
    return (
        f"https://login.microsoftonline.com/{settings.tenant}/v2.0/.well-known/openid-configuration"
    )


class SigningKeys:
    """``kid`` → RSA public key, for one tenant."""

    def __init__(self, settings: AuthSettings) -> None:
        self.url = openid_config_url(settings)
        self._ca_file = settings.ca_file
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None
        self._last_unknown_kid_refresh = -UNKNOWN_KID_REFRESH_EVERY
        self._refreshing: asyncio.Task[None] | None = None
        self._timer: asyncio.Task[None] | None = None
        self.unknown_kid_refresh_every = UNKNOWN_KID_REFRESH_EVERY

    @property
    def loaded(self) -> bool:
        return self._fetched_at is not None

    def get(self, kid: str | None) -> Any | None:
        return self._keys.get(kid) if kid is not None else None

    def may_refresh_for_unknown_kid(self) -> bool:
        return time.monotonic() - self._last_unknown_kid_refresh >= self.unknown_kid_refresh_every

    async def refresh_for_unknown_kid(self) -> None:
        """One refresh because a token named an unknown key id (rate-limited by the caller)."""
        if self._refreshing is None or self._refreshing.done():  # one under way counts
            self._last_unknown_kid_refresh = time.monotonic()
        await self.refresh()

    async def refresh(self) -> None:
        """Fetch the keys; concurrent callers share one fetch. Raises KeysUnavailable."""
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self._fetch())
        task = self._refreshing
        try:
            await asyncio.shield(task)
        finally:
            if task.done() and self._refreshing is task:
                self._refreshing = None

    async def start(self) -> None:
        if self._timer is None:
            self._timer = asyncio.create_task(self._refresh_periodically())

    async def stop(self) -> None:
        for task in (self._timer, self._refreshing):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, KeysUnavailable):
                    await task
        self._timer = self._refreshing = None

    async def _refresh_periodically(self) -> None:
        while True:
            try:
                await self.refresh()
                delay = REFRESH_EVERY
            except KeysUnavailable as exc:
                log.warning("%s; retrying in %d s", exc, RETRY_EVERY)
                delay = RETRY_EVERY
            await asyncio.sleep(delay)

    async def _fetch(self) -> None:
        try:
            context = client_context(self._ca_file, "auth.ca_file")
        except ConfigError as exc:
            raise KeysUnavailable(str(exc)) from None
        timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT)
        connector = aiohttp.TCPConnector(ssl=context)
        try:
            async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
                configuration = await _get_json(session, self.url)
                jwks_uri = configuration.get("jwks_uri")
                if not isinstance(jwks_uri, str) or not jwks_uri.startswith("https://"):
                    raise KeysUnavailable(f"{_shown(self.url)} names no https jwks_uri")
                keys = _rsa_keys(await _get_json(session, jwks_uri), _shown(jwks_uri))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = _scrubbed(str(exc), self.url) or type(exc).__name__
            raise KeysUnavailable(f"cannot fetch the Entra signing keys ({reason})") from None
        self._keys = keys
        self._fetched_at = time.monotonic()
        log.info("Entra signing keys loaded: %d key(s) from %s", len(keys), _shown(self.url))


def _shown(url: str) -> str:
    """``url`` without its user part and query, which may hold a credential."""
    try:
        parts = urlsplit(url)
        return (
            f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"
        )
    except ValueError:
        return "(an unreadable URL)"


def _scrubbed(text: str, url: str) -> str:
    """``text`` (an HTTP client's error) with the secret parts of ``url`` hidden."""
    try:
        parts = urlsplit(url)
        secrets = (parts.password, parts.username, parts.query)
    except ValueError:
        return ""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


async def _get_json(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    shown = _shown(url)
    async with session.get(url, allow_redirects=False) as response:
        if response.status != 200:
            raise KeysUnavailable(f"{shown} answered HTTP {response.status}")
        # read(n) gives what has arrived so far, up to n: read on to the end or the limit.
        body = b""
        while len(body) <= MAX_DOCUMENT_BYTES and (
            chunk := await response.content.read(MAX_DOCUMENT_BYTES + 1 - len(body))
        ):
            body += chunk
    if len(body) > MAX_DOCUMENT_BYTES:
        raise KeysUnavailable(f"{shown} sent more than {MAX_DOCUMENT_BYTES} bytes")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise KeysUnavailable(f"{shown} did not answer JSON") from None
    if not isinstance(document, dict):
        raise KeysUnavailable(f"{shown} did not answer a JSON object")
    return document


def _rsa_keys(jwks: dict[str, Any], url: str) -> dict[str, Any]:
    keys: dict[str, Any] = {}
    for entry in jwks.get("keys") or ():
        if not isinstance(entry, dict) or entry.get("kty") != "RSA":
            continue
        if entry.get("use", "sig") != "sig" or not isinstance(entry.get("kid"), str):
            continue
        try:
            keys[entry["kid"]] = PyJWK(entry, algorithm="RS256").key
        except PyJWKError:
            continue  # one unusable key must not hide the others
    if not keys:
        raise KeysUnavailable(f"{url} holds no RSA signing key")
    return keys
