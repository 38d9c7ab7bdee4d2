"""Async client for the Tradecloud API v2 (TRADECLOUD.md §11): JWT login and refresh, orders,
shipments and documents.

It prints nothing and never puts a token or password into an exception. One client may be shared
by many tasks (a background worker, say): authentication is serialised, requests are paced to at
most ``requests_per_second`` and sent with retries and exponential back-off.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import os
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, unquote, urlsplit

import aiohttp
from yarl import URL

from tcwebhook.errors import (
    ApiAccessDenied,
    ApiCredentialsError,
    ApiError,
    ApiNotFound,
    ApiUnavailable,
)
from tcwebhook.trust import client_context
from tcwebhook.urls import host_port

if TYPE_CHECKING:
    from tcwebhook.config import Settings

USERNAME_ENV = "TRADECLOUD_USERNAME"
PASSWORD_ENV = "TRADECLOUD_PASSWORD"
TOKEN_CACHE_NAME = "tradecloud-tokens.json"

# §11.1 [inf]: refresh five minutes before the access token's `exp`.
REFRESH_MARGIN_SECONDS = 300.0
# §11.1: refresh tokens live 24 hours; used when a refresh token carries no readable `exp`.
REFRESH_TOKEN_LIFETIME_SECONDS = 24 * 3600.0
# §11.5: retry 5xx and 429 (and timeouts, connection errors) with exponential back-off.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER_SECONDS = 30.0

ObjectKind = Literal["order", "shipment"]
# The polling endpoints of §11.4, under the base URL.
PollEndpoint = Literal["order-search/poll", "order-search/poll/single-delivery", "shipment/poll"]
POLL_LIMIT = 100  # §11.4: at most 100 objects per page


# ------------------------------------------------------------------------------------------
# Tokens


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
    """Tokens kept in one JSON file (mode 0600), one entry per user and API base URL.

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
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(entries, handle)
        os.chmod(temporary, 0o600)
        os.replace(temporary, self.path)


def _strip_bearer(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if value[:7].lower() == "bearer ":
        value = value[7:].strip()
    return value or None


# ------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Fetched:
    """An order or shipment as the API sent it: the raw body and its parsed form."""

    kind: ObjectKind
    id: str
    raw: bytes
    data: dict[str, Any]


@dataclass(frozen=True)
class PollPage:
    """One page of a poll (§11.4): the objects, how many match in all, and the cursor."""

    data: list[dict[str, Any]]
    total: int
    last_updated_at: str | None  # exactly as received: the next lastUpdatedAfter


@dataclass(frozen=True)
class DocumentMetadata:
    """``GET /object-storage/document/{objectId}/metadata`` (§11.3)."""

    object_id: str
    filename: str | None
    content_type: str | None
    download_url: str


@dataclass(frozen=True)
class LogoutResult:
    """What ``logout`` did: ``logged-out``, ``not-logged-in`` or ``failed`` (with a reason)."""

    outcome: Literal["logged-out", "not-logged-in", "failed"]
    reason: str | None = None


# ------------------------------------------------------------------------------------------
# The client


class _Pacer:
    """At most ``per_second`` request starts per second, one after another (§11.5)."""

    def __init__(self, per_second: float) -> None:
        self._interval = 1.0 / per_second if per_second > 0 else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            loop = asyncio.get_running_loop()
            delay = self._next - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self._next = max(loop.time(), self._next) + self._interval


@dataclass
class _Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


class TradecloudClient:
    """Tradecloud API v2 client. Use as ``async with TradecloudClient.from_settings(s) as api``."""

    def __init__(
        self,
        base_url: str,
        username: str | None = None,
        password: str | None = None,
        *,
        ca_file: Path | None = None,
        token_cache: TokenCache | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 30.0,
        attempts: int = 4,
        backoff: float = 0.5,
        requests_per_second: float = 10.0,
        refresh_margin: float = REFRESH_MARGIN_SECONDS,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username or None
        self._password = password or None
        self._ssl = make_ssl_context(ca_file)
        self._cache = token_cache
        self._session = session
        self._owns_session = session is None
        self._timeout = timeout
        self._attempts = max(1, attempts)
        self._backoff = backoff
        self._refresh_margin = refresh_margin
        self._pacer = _Pacer(requests_per_second)
        self._auth_lock = asyncio.Lock()
        self._tokens: Tokens | None = None
        self._tokens_loaded = False

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        session: aiohttp.ClientSession | None = None,
        environ: Mapping[str, str] | None = None,
        **options: Any,
    ) -> TradecloudClient:
        """A client for ``settings.tradecloud``, caching tokens in the data directory.

        Username and password fall back to $TRADECLOUD_USERNAME and $TRADECLOUD_PASSWORD.
        """
        environ = os.environ if environ is None else environ
        tradecloud = settings.tradecloud
        return cls(
            tradecloud.api_base_url,
            tradecloud.username or environ.get(USERNAME_ENV),
            tradecloud.password or environ.get(PASSWORD_ENV),
            ca_file=tradecloud.ca_file,
            token_cache=TokenCache(settings.data_dir / TOKEN_CACHE_NAME),
            session=session,
            **options,
        )

    async def __aenter__(self) -> TradecloudClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    # -- data -------------------------------------------------------------------------------

    async def fetch(self, kind: ObjectKind, object_id: str) -> Fetched:
        """``GET /order/{id}`` or ``GET /shipment/{id}`` (§11.2): the whole object."""
        what = f"{kind} {object_id!r}"
        answer = await self._authorized("GET", self._url(kind, object_id), what)
        return Fetched(kind, object_id, answer.body, self._json_object(answer.body, what))

    async def get_order(self, order_id: str) -> dict[str, Any]:
        """The order object of §6 with every line."""
        return (await self.fetch("order", order_id)).data

    async def get_shipment(self, shipment_id: str) -> dict[str, Any]:
        """The shipment object of §9."""
        return (await self.fetch("shipment", shipment_id)).data

    async def poll(
        self,
        endpoint: PollEndpoint,
        last_updated_after: str,
        offset: int = 0,
        limit: int = POLL_LIMIT,
    ) -> PollPage:
        """``POST {base}/{endpoint}``: objects updated after ``last_updated_after``, one page."""
        what = f"poll of {endpoint} (offset {offset})"
        request = {
            "filters": {"lastUpdatedAfter": last_updated_after},
            "offset": offset,
            "limit": min(limit, POLL_LIMIT),
        }
        url = self._url(*endpoint.split("/"))
        answer = await self._authorized("POST", url, what, json.dumps(request).encode())
        page = self._json_object(answer.body, what)
        data, total = page.get("data"), page.get("total")
        if not isinstance(data, list) or isinstance(total, bool) or not isinstance(total, int):
            raise ApiError(f"Tradecloud's answer to the {what} has no data array or total")
        cursor = page.get("lastUpdatedAt")
        return PollPage(
            [item for item in data if isinstance(item, dict)],
            total,
            cursor if isinstance(cursor, str) and cursor else None,
        )

    async def get_document_metadata(self, object_id: str) -> DocumentMetadata:
        """``{id, filename, contentType, downloadUrl}`` of a stored document (§11.3)."""
        what = f"document {object_id!r}"
        url = self._url("object-storage", "document", object_id, "metadata")
        answer = await self._authorized("GET", url, what)
        data = self._json_object(answer.body, what)
        download_url = data.get("downloadUrl")
        if not isinstance(download_url, str) or not download_url:
            raise ApiError(f"Tradecloud's metadata for {what} has no downloadUrl; try again later")
        filename, content_type = data.get("filename"), data.get("contentType")
        return DocumentMetadata(
            object_id,
            filename if isinstance(filename, str) and filename else None,
            content_type if isinstance(content_type, str) else None,
            download_url,
        )

    async def download_document(self, object_id: str, dest: Path | None = None) -> Path:
        """Download a stored document; ``dest`` is a file, a directory, or None for the cwd.

        The pre-signed ``downloadUrl`` expires within a minute, so it is fetched at once and
        without ``Authorization``. If that fails, the file is streamed through Tradecloud.
        """
        metadata = await self.get_document_metadata(object_id)
        target = _target_path(dest, metadata.filename or object_id)
        what = f"document {object_id!r}"
        try:
            await self._download(metadata.download_url, target, what, authorized=False)
        except ApiError as presigned_failure:
            url = self._url("object-storage", "document", object_id)
            try:
                await self._download(url, target, what, authorized=True)
            except ApiError:
                raise presigned_failure from None
        return target

    async def download_reference(self, document: Mapping[str, Any], directory: Path) -> Path | None:
        """Download a document reference (``objectId`` or ``url``); None when it has neither."""
        object_id = document.get("objectId")
        if isinstance(object_id, str) and object_id:
            return await self.download_document(object_id, directory)
        url = document.get("url")
        if isinstance(url, str) and url:
            name = document.get("name")
            fallback = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
            filename = name if isinstance(name, str) and name else fallback
            target = _target_path(directory, filename or str(document.get("code") or "document"))
            await self._download(url, target, f"document at {url}", authorized=False)
            return target
        return None

    # -- authentication ---------------------------------------------------------------------

    async def login(self) -> None:
        """Log in now, even if cached tokens are still valid."""
        async with self._auth_lock:
            self._store_tokens(await self._login())

    async def logout(self) -> LogoutResult:
        """``POST /authentication/logout`` with the refresh token; forget the cached tokens.

        A failed logout is not fatal (§11.1): the local tokens are gone either way.
        """
        async with self._auth_lock:
            tokens = self._current_tokens()
            self._store_tokens(None)
        if tokens is None:
            return LogoutResult("not-logged-in")
        try:
            answer = await self._send(
                "POST",
                self._url("authentication", "logout"),
                {"Refresh-Token": tokens.refresh},
                "logout",
            )
        except ApiUnavailable as exc:
            return LogoutResult("failed", str(exc))
        if 200 <= answer.status < 300:
            return LogoutResult("logged-out")
        return LogoutResult("failed", f"Tradecloud answered HTTP {answer.status} to the logout")

    @property
    def cache_key(self) -> str:
        return f"{self.username or ''} {self.base_url}"

    def _current_tokens(self) -> Tokens | None:
        if not self._tokens_loaded:
            self._tokens_loaded = True
            if self._cache is not None and self.username:
                self._tokens = self._cache.load(self.cache_key)
        return self._tokens

    def _store_tokens(self, tokens: Tokens | None) -> None:
        self._tokens, self._tokens_loaded = tokens, True
        if self._cache is not None and self.username:
            self._cache.save(self.cache_key, tokens)

    async def _access_token(self) -> str:
        async with self._auth_lock:
            tokens = self._current_tokens()
            if tokens is not None and tokens.access_usable(time.time(), self._refresh_margin):
                return tokens.access
            return await self._renew_locked(tokens)

    async def _renew(self, rejected: str) -> str:
        """A new access token after ``rejected`` got a 401 (unless another task renewed it)."""
        async with self._auth_lock:
            tokens = self._current_tokens()
            if tokens is not None and tokens.access != rejected:
                return tokens.access
            return await self._renew_locked(tokens)

    async def _renew_locked(self, tokens: Tokens | None) -> str:
        renewed = None
        if tokens is not None and tokens.refresh_usable(time.time()):
            renewed = await self._refresh(tokens.refresh)
        if renewed is None:
            renewed = await self._login()
        self._store_tokens(renewed)
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
        credentials = f"{self.username}:{self._password}".encode()
        authorization = "Basic " + base64.b64encode(credentials).decode("ascii")
        answer = await self._send(
            "GET",
            self._url("authentication", "login"),
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
                f"Tradecloud answered HTTP {answer.status} to the login{_excerpt(answer)}"
            )
        access = _strip_bearer(answer.headers.get("Set-Authorization"))
        refresh = _strip_bearer(answer.headers.get("Set-Refresh-Token"))
        if access is None or refresh is None:
            raise ApiError(
                "Tradecloud's login answer carried no Set-Authorization / Set-Refresh-Token "
                f"headers; is {self.base_url} the Tradecloud API v2 base URL?"
            )
        return Tokens.issued(access, refresh, time.time())

    async def _refresh(self, refresh_token: str) -> Tokens | None:
        """New tokens for a refresh token (sent alone, §11.1); None when Tradecloud refuses it."""
        answer = await self._send(
            "GET",
            self._url("authentication", "refresh"),
            {"Refresh-Token": refresh_token, "Accept": "application/json"},
            "token refresh",
        )
        if answer.status != 200:
            return None
        access = _strip_bearer(answer.headers.get("Set-Authorization"))
        refresh = _strip_bearer(answer.headers.get("Set-Refresh-Token"))
        if access is None or refresh is None:
            return None
        return Tokens.issued(access, refresh, time.time())

    # -- HTTP -------------------------------------------------------------------------------

    def _url(self, *segments: str) -> URL:
        # Ids are opaque and may hold '/' or spaces (§12.30): percent-encode every segment.
        path = "/".join(quote(segment, safe="") for segment in segments)
        return URL(f"{self.base_url}/{path}", encoded=True)

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        return self._session

    async def _authorized(
        self, method: str, url: URL, what: str, body: bytes | None = None
    ) -> _Answer:
        """A data call with Bearer; on 401 renew the tokens and retry once."""
        token = await self._access_token()
        answer = await self._send(method, url, _bearer(token, body), what, body=body)
        if answer.status == 401:
            token = await self._renew(token)
            answer = await self._send(method, url, _bearer(token, body), what, body=body)
            if answer.status == 401:
                raise ApiCredentialsError(
                    f"Tradecloud rejected a fresh access token for {what} (401); check that "
                    f"{self.username} is an integration user and run 'tcwebhook logout'"
                )
        self._raise_for_status(answer, what)
        return answer

    def _raise_for_status(self, answer: _Answer, what: str) -> None:
        if 200 <= answer.status < 300:
            return
        if answer.status == 403:
            raise ApiAccessDenied(
                f"Tradecloud refused access to {what} (403): {self.username} needs the "
                "integration role and its company must be a party to it"
            )
        if answer.status == 404:
            raise ApiNotFound(
                f"Tradecloud has no {what} (404): check the Tradecloud id (not the purchase "
                f"order or shipment number) and the environment ({self.base_url})"
            )
        raise ApiError(f"Tradecloud answered HTTP {answer.status} to {what}{_excerpt(answer)}")

    def _json_object(self, body: bytes, what: str) -> dict[str, Any]:
        try:
            data = json.loads(body, parse_float=Decimal)
        except ValueError:
            raise ApiError(
                f"Tradecloud's answer for {what} is not JSON; check the base URL"
            ) from None
        if not isinstance(data, dict):
            raise ApiError(f"Tradecloud's answer for {what} is not a JSON object")
        return data

    async def _download(self, url: str | URL, target: Path, what: str, authorized: bool) -> None:
        partial = target.with_name(f".{target.name}.part")

        async def write(response: aiohttp.ClientResponse) -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            with partial.open("wb") as handle:
                async for chunk in response.content.iter_chunked(64 * 1024):
                    handle.write(chunk)

        try:
            if authorized:
                token = await self._access_token()
                answer = await self._send("GET", url, _bearer(token), what, write)
            else:
                answer = await self._send("GET", url, {}, what, write, long=True)
            if answer.status != 200:
                if authorized:
                    self._raise_for_status(answer, what)
                raise ApiError(f"the download of {what} answered HTTP {answer.status}")
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)

    async def _send(
        self,
        method: str,
        url: str | URL,
        headers: Mapping[str, str],
        what: str,
        consume: Callable[[aiohttp.ClientResponse], Awaitable[None]] | None = None,
        long: bool = False,
        body: bytes | None = None,
    ) -> _Answer:
        """``_send_with_retries``, counted in the metrics when they are on."""
        from tcwebhook import metrics

        counter = metrics.active()
        try:
            answer = await self._send_with_retries(method, url, headers, what, consume, long, body)
        except ApiUnavailable:
            if counter is not None:
                counter.api_call(None)
            raise
        if counter is not None:
            counter.api_call(answer.status)
        return answer

    async def _send_with_retries(
        self,
        method: str,
        url: str | URL,
        headers: Mapping[str, str],
        what: str,
        consume: Callable[[aiohttp.ClientResponse], Awaitable[None]] | None,
        long: bool,
        body: bytes | None,
    ) -> _Answer:
        """One request with pacing and retries; returns the final answer, whatever its status."""
        session = self._get_session()
        timeout = (
            aiohttp.ClientTimeout(total=None, sock_connect=self._timeout, sock_read=self._timeout)
            if long or consume is not None
            else aiohttp.ClientTimeout(total=self._timeout)
        )
        problem = ""
        for attempt in range(1, self._attempts + 1):
            await self._pacer.wait()
            delay = self._backoff * 2 ** (attempt - 1)
            try:
                async with session.request(
                    method, url, headers=dict(headers), data=body, ssl=self._ssl, timeout=timeout
                ) as response:
                    if response.status in RETRY_STATUSES and attempt < self._attempts:
                        await response.read()
                        delay = max(delay, _retry_after(response.headers))
                        problem = f"HTTP {response.status}"
                    elif consume is not None and response.status == 200:
                        await consume(response)
                        return _Answer(response.status, response.headers, b"")
                    else:
                        body = await response.read()
                        if response.status in RETRY_STATUSES:
                            problem = f"HTTP {response.status}"
                            break
                        return _Answer(response.status, response.headers, body)
            except aiohttp.ClientConnectorCertificateError as exc:
                raise ApiUnavailable(
                    f"the TLS certificate of {_host(url)} is not trusted "
                    f"({exc.certificate_error}); if a proxy inspects TLS, pass its CA with "
                    "--ca-file or tradecloud.ca_file"
                ) from None
            except aiohttp.ClientSSLError as exc:
                raise ApiUnavailable(f"TLS with {_host(url)} failed: {exc}") from None
            except (aiohttp.ClientError, TimeoutError) as exc:
                problem = _describe(exc)
            if attempt < self._attempts:
                await asyncio.sleep(delay)
        raise ApiUnavailable(
            f"Tradecloud is unavailable: the {what} failed {self._attempts} times "
            f"(last: {problem}) at {_host(url)}; check the network and the base URL, or "
            "https://status.tradecloud1.com, then try again"
        )


def make_ssl_context(ca_file: Path | None) -> ssl.SSLContext:
    """The system trust store (honouring $SSL_CERT_FILE), plus ``ca_file`` when given."""
    return client_context(ca_file, "--ca-file / tradecloud.ca_file")


def _bearer(token: str, body: bytes | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    return headers


def _target_path(dest: Path | None, filename: str) -> Path:
    # Only the last component of a server-chosen name: never write outside the target folder.
    safe = Path(filename.replace("\\", "/")).name.strip()
    if safe in ("", ".", ".."):
        safe = "document"
    if dest is None:
        return Path.cwd() / safe
    return dest / safe if dest.is_dir() else dest


def _retry_after(headers: Mapping[str, str]) -> float:
    try:
        return min(float(headers.get("Retry-After", "0")), MAX_RETRY_AFTER_SECONDS)
    except ValueError:
        return 0.0


def _host(url: str | URL) -> str:
    parsed = URL(url) if isinstance(url, str) else url
    return host_port(str(parsed.host), parsed.port)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientConnectorError):
        # str(exc) embeds the repr of the SSL context ("ssl:<ssl.SSLContext object at 0x…>").
        reason = exc.os_error.strerror or str(exc.os_error) or type(exc.os_error).__name__
        return f"cannot connect to {host_port(exc.host, exc.port)}: {reason}"
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


def _excerpt(answer: _Answer) -> str:
    text = " ".join(answer.body[:200].decode("utf-8", "replace").split())
    return f": {text}" if text else ""
