"""The Entra tenant's signing keys: fetched off the request path, cached, refreshed.

Keys come from the ``jwks_uri`` of the tenant's OpenID configuration. A timer fetches them when
the server starts, then every ``REFRESH_EVERY`` seconds (every ``RETRY_EVERY`` seconds while a
fetch fails). A token naming a key id we do not hold (Entra rolls its keys) may start a fetch
itself, spaced so that forged key ids cannot make us hammer the key server: while keys are held,
at most one such fetch per ``UNKNOWN_KID_REFRESH_EVERY`` seconds; while none are (or the last
fetch failed), none within ``RETRY_EVERY`` seconds of the previous fetch. Requests share the fetch
under way and wait for it at most ``REQUEST_WAIT`` seconds from its start; it goes on without them.

What a request cannot check now it is told to retry (``KeysUnavailable.retry_after``), and a fetch
is booked for the first moment the spacing allows: Tradecloud drops an event answered 401, so
only a key id missing from keys fetched after the token arrived is ``UnknownKey``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
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
RETRY_EVERY = 30.0  # after a failed fetch; the spacing of all fetches while no keys are held
UNKNOWN_KID_REFRESH_EVERY = 300.0  # the spacing of fetches for unknown key ids while keys are held
FETCH_TIMEOUT = 10.0
REQUEST_WAIT = 2.0  # Tradecloud wants an answer within seconds; the fetch goes on regardless
MAX_DOCUMENT_BYTES = 1024 * 1024


class KeysUnavailable(Exception):
    """The signing keys cannot be used right now (the reason is in the message, never a secret).

    ``retry_after``: seconds until a fetch may bring them.
    """

    def __init__(self, message: str, retry_after: int = math.ceil(RETRY_EVERY)) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UnknownKey(Exception):
    """Keys fetched after the token arrived do not hold its key id."""


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
        self._loaded = False
        self._started_at: float | None = None  # the latest fetch's start (monotonic)
        self._asked_at: float | None = None  # the latest start of a fetch a request asked for
        self._error: str | None = None  # why the latest finished fetch failed; None: it did not
        self._fetching: asyncio.Task[None] | None = None
        self._wanted = False  # a request needs a fetch as soon as the spacing allows
        self._wake = asyncio.Event()
        self._timer: asyncio.Task[None] | None = None
        # Read here rather than at use, so that a test may shorten them for one instance.
        self.refresh_every = REFRESH_EVERY
        self.retry_every = RETRY_EVERY
        self.unknown_kid_refresh_every = UNKNOWN_KID_REFRESH_EVERY
        self.request_wait = REQUEST_WAIT

    @property
    def loaded(self) -> bool:
        return self._loaded

    def get(self, kid: str) -> Any | None:
        return self._keys.get(kid)

    async def key_for(self, kid: str) -> Any:
        """The key named ``kid``, fetching the keys first when allowed.

        Raises UnknownKey when keys fetched after this call began lack ``kid``, KeysUnavailable
        when that cannot be known now (fetch not allowed yet, failed or still running).
        """
        key = self._keys.get(kid)
        if key is not None:
            return key
        asked_at = time.monotonic()
        task = self._fetching
        if task is None:
            if asked_at < self._next_allowed():
                raise self._book("a fetch of the Entra signing keys is not due yet")
            task = self._start_fetch(asked=True)
        started_at = self._started_at or asked_at
        # Measured from the fetch's start: once a fetch is slow, later requests do not wait too.
        wait = started_at + self.request_wait - time.monotonic()
        if wait > 0:
            await asyncio.wait({task}, timeout=wait)  # never cancels the shared fetch
        key = self._keys.get(kid)
        if key is not None:
            return key
        if not task.done():
            raise self._retry_later("the Entra key server has not answered yet")
        if self._error is not None:
            raise self._retry_later(self._error)
        if started_at >= asked_at:
            raise UnknownKey(kid)
        raise self._book("the keys fetched before this token arrived lack its key id")

    async def refresh(self) -> None:
        """Fetch the keys now, whatever the spacing. Raises KeysUnavailable."""
        task = self._fetching or self._start_fetch(asked=False)
        await asyncio.shield(task)
        if self._error is not None:
            raise KeysUnavailable(self._error)

    async def start(self) -> None:
        if self._timer is None:
            self._timer = asyncio.create_task(self._fetch_when_due())

    async def stop(self) -> None:
        for task in (self._timer, self._fetching):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._timer = self._fetching = None

    def _next_allowed(self) -> float:
        """When a request may start a fetch (monotonic): spaced in every state."""
        if self._loaded and self._error is None:
            last, spacing = self._asked_at, self.unknown_kid_refresh_every
        else:
            last, spacing = self._started_at, self.retry_every
        return -math.inf if last is None else last + spacing

    def _due(self) -> float:
        """When the timer fetches next (monotonic)."""
        if self._started_at is None or self._wanted:
            return self._next_allowed()
        every = self.retry_every if self._error is not None else self.refresh_every
        return self._started_at + every

    def _book(self, reason: str) -> KeysUnavailable:
        """Have the timer fetch at the first allowed moment; say when to come back."""
        self._wanted = True
        self._wake.set()
        return self._retry_later(reason)

    def _retry_later(self, reason: str) -> KeysUnavailable:
        if self._fetching is not None and self._started_at is not None:
            ready = self._started_at + FETCH_TIMEOUT
        else:
            ready = self._due()
        return KeysUnavailable(reason, retry_after=max(1, math.ceil(ready - time.monotonic())))

    def _start_fetch(self, asked: bool) -> asyncio.Task[None]:
        """Start the one fetch; ``asked``: on behalf of requests, so spaced as theirs."""
        self._started_at = time.monotonic()
        if asked:
            self._asked_at = self._started_at
        self._wanted = False
        task = self._fetching = asyncio.ensure_future(self._fetch_and_record())
        return task

    async def _fetch_and_record(self) -> None:
        try:
            self._keys = await self._fetch()
        except KeysUnavailable as exc:
            self._error = str(exc)
            log.warning("%s; retrying in %d s", exc, self.retry_every)
        else:
            self._error = None
            self._loaded = True
            log.info(
                "Entra signing keys loaded: %d key(s) from %s", len(self._keys), _shown(self.url)
            )
        finally:
            self._fetching = None
            self._wake.set()  # the timer plans its next fetch from this one's end

    async def _fetch_when_due(self) -> None:
        while True:
            delay = self._due() - time.monotonic()
            if delay > 0 or self._fetching is not None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(delay, 0.0) or None):
                        await self._wake.wait()
                continue
            self._start_fetch(asked=self._wanted)

    async def _fetch(self) -> dict[str, Any]:
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
                return _rsa_keys(await _get_json(session, jwks_uri), _shown(jwks_uri))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = _scrubbed(str(exc), self.url) or type(exc).__name__
            raise KeysUnavailable(f"cannot fetch the Entra signing keys ({reason})") from None


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
