"""HTTP to the Tradecloud API: pacing, retries with back-off, TLS and connection errors as ours.

The rules are those of docs/tradecloud.md#api-usage-rules: at most ten requests per second, one
after another; ``5xx``, ``429``, timeouts and connection errors retried with exponential back-off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import aiohttp
from yarl import URL

from tcwebhook import metrics
from tcwebhook.backoff import exponential
from tcwebhook.errors import ApiError, ApiUnavailable
from tcwebhook.trust import client_context
from tcwebhook.urls import host_port

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER_SECONDS = 30.0
# The most read of one answer into memory. A poll page holds at most 100 objects; a broken or
# hostile answer must end as an error, not as a process killed for want of memory.
MAX_ANSWER_BYTES = 64 << 20
_READ_CHUNK = 64 << 10

# Streams a successful (200) answer's body somewhere instead of reading it into memory.
Consume = Callable[[aiohttp.ClientResponse], Awaitable[None]]


@dataclass
class Answer:
    """The final HTTP answer to one request: status, headers and (unless streamed) body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def excerpt(self) -> str:
        """``": <start of the body>"`` for an error message, or "" for an empty body."""
        text = " ".join(self.body[:200].decode("utf-8", "replace").split())
        return f": {text}" if text else ""


def endpoint_url(base_url: str, *segments: str) -> URL:
    """``base_url/segment/…`` with every segment percent-encoded."""
    # Ids are opaque and may hold '/' or spaces (docs/tradecloud.md#ambiguities).
    path = "/".join(quote(segment, safe="") for segment in segments)
    return URL(f"{base_url}/{path}", encoded=True)


class Pacer:
    """Lets at most ``per_second`` requests start per second, one after another."""

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


class Transport:
    """Sends paced requests with retries and turns TLS and network failures into ApiUnavailable."""

    def __init__(
        self,
        *,
        ca_file: Path | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 30.0,
        attempts: int = 4,
        backoff: float = 0.5,
        requests_per_second: float = 10.0,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        self._ssl = client_context(ca_file, "--ca-file / tradecloud.ca_file")
        self._max_answer_bytes = max_answer_bytes
        self._session = session
        self._owns_session = session is None
        self._timeout = timeout
        self._attempts = max(1, attempts)
        self._backoff = backoff
        self._pacer = Pacer(requests_per_second)

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def send(
        self,
        method: str,
        url: str | URL,
        headers: Mapping[str, str],
        what: str,
        consume: Consume | None = None,
        long: bool = False,
        body: bytes | None = None,
    ) -> Answer:
        """One request, paced and retried; the final answer whatever its status.

        ``what`` names the request in messages; ``consume`` streams a 200 answer's body; ``long``
        bounds only connecting and each read, not the whole transfer. Counted in the metrics
        when they are on.
        """
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

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        return self._session

    async def _send_with_retries(
        self,
        method: str,
        url: str | URL,
        headers: Mapping[str, str],
        what: str,
        consume: Consume | None,
        long: bool,
        body: bytes | None,
    ) -> Answer:
        session = self._get_session()
        timeout = (
            aiohttp.ClientTimeout(total=None, sock_connect=self._timeout, sock_read=self._timeout)
            if long or consume is not None
            else aiohttp.ClientTimeout(total=self._timeout)
        )
        problem = ""
        for attempt in range(1, self._attempts + 1):
            await self._pacer.wait()
            delay = exponential(attempt, base=self._backoff)
            try:
                async with session.request(
                    method, url, headers=dict(headers), data=body, ssl=self._ssl, timeout=timeout
                ) as response:
                    if response.status in RETRY_STATUSES and attempt < self._attempts:
                        await self._read(response, what)
                        delay = max(delay, _retry_after(response.headers))
                        problem = f"HTTP {response.status}"
                    elif consume is not None and response.status == 200:
                        await consume(response)
                        return Answer(response.status, response.headers, b"")
                    else:
                        received = await self._read(response, what)
                        if response.status in RETRY_STATUSES:
                            problem = f"HTTP {response.status}"
                            break
                        return Answer(response.status, response.headers, received)
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

    async def _read(self, response: aiohttp.ClientResponse, what: str) -> bytes:
        """The whole body, or an ApiError as soon as it is known to be over the limit."""
        limit = self._max_answer_bytes
        announced = response.content_length  # before decompression: checked again below
        if announced is not None and announced > limit:
            raise _too_large(what, limit)
        chunks, size = [], 0
        async for chunk in response.content.iter_chunked(_READ_CHUNK):
            size += len(chunk)
            if size > limit:
                raise _too_large(what, limit)
            chunks.append(chunk)
        return b"".join(chunks)


class AnswerTooLarge(ApiError):
    """An answer over the client's ``max_answer_bytes``; it was not read further."""


def _too_large(what: str, limit: int) -> AnswerTooLarge:
    return AnswerTooLarge(
        f"Tradecloud's answer to the {what} is larger than {_size(limit)}, the most tcwebhook "
        "reads of one answer; it stopped reading; try again later, and tell Tradecloud if it "
        "keeps happening"
    )


def _size(count: int) -> str:
    return f"{count >> 20} MiB" if count % (1 << 20) == 0 else f"{count} bytes"


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
