"""Sending events like Tradecloud's sender: one request per event, retried like Tradecloud
retries (docs/tradecloud.md#status-codes-and-retries), several in flight in load mode."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import math
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from tcwebhook import protocol
from tcwebhook.backoff import TRADECLOUD_SENDER, Schedule
from tcwebhook.errors import PayloadError, ReplaySourceError, ReplayTargetError, TcwebhookError
from tcwebhook.replay.edit import (
    apply_assignment,
    id_of,
    message_id_of,
    refresh_message_id,
    resource_of,
)
from tcwebhook.replay.report import ReplayReport, SendResult
from tcwebhook.replay.sources import BodyFormat, Source
from tcwebhook.replay.target import Method, Target, request_url
from tcwebhook.txml import DEFAULT_ROOT, XML_CONTENT_TYPE, json_for_xml, to_xml

if TYPE_CHECKING:
    import aiohttp

USER_AGENT = "tcwebhook-replay"
# The payload keys whose webhook has a tXML format: the order webhook's (docs/tradecloud.md#txml).
TXML_PAYLOAD_KEYS = frozenset(protocol.ORDER_PAYLOAD_KEYS)
_MAX_KEPT_BODY = 64 * 1024


@dataclass(frozen=True)
class RetryPolicy:
    """Tradecloud's sender: retry >500 and connection errors with exponential back-off."""

    enabled: bool = False
    max_attempts: int = 5
    initial_delay: float = TRADECLOUD_SENDER.base
    max_delay: float = TRADECLOUD_SENDER.cap

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ReplaySourceError("--max-attempts must be at least 1")
        if not (0 <= self.max_delay < math.inf and 0 <= self.initial_delay < math.inf):
            raise ReplaySourceError(
                f"--max-delay must be a number of seconds, 0 or more (got {self.max_delay})"
            )

    def delay(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (1-based)."""
        return self.schedule.delay(attempt)

    @property
    def schedule(self) -> Schedule:
        """Tradecloud's sender as replay imitates it, from these first and longest waits."""
        return dataclasses.replace(TRADECLOUD_SENDER, base=self.initial_delay, cap=self.max_delay)

    def should_retry(self, status: int | None, attempt: int) -> bool:
        if not self.enabled or attempt >= self.max_attempts:
            return False
        return protocol.is_retried(status)  # never 4xx, never 500


@dataclass(frozen=True)
class ReplayOptions:
    fresh_ids: bool = False
    assignments: tuple[tuple[str, Any], ...] = ()
    count: int | None = None  # load mode: this many events, cycling through the sources
    concurrency: int = 1
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float = 30.0
    keep_response: bool = False
    body_format: BodyFormat | None = None  # None: each source as it is (samples as JSON)

    def __post_init__(self) -> None:
        if self.count is not None and self.count < 1:
            raise ReplaySourceError("--count must be at least 1")
        if self.concurrency < 1:
            raise ReplaySourceError("--concurrency must be at least 1")
        if not 0 < self.timeout < math.inf:  # also false for NaN
            raise ReplaySourceError(
                f"--timeout must be a number of seconds above 0 (got {self.timeout})"
            )


@dataclass(frozen=True)
class _Prepared:
    source: str
    event_name: str | None
    message_id: str | None
    url: str
    shown_url: str
    data: bytes | None
    method: Method
    content_type: str | None = None


def prepare(source: Source, target: Target, options: ReplayOptions, fresh: bool) -> _Prepared:
    """The request for one event: body edited (--fresh-ids, then --set), URL by payload key."""
    if source.notification is not None:
        return _prepare_notification(source, target, options)
    body_format = options.body_format or source.body_format
    if options.body_format == "xml" and target.method == "GET":
        raise ReplaySourceError("--format xml shapes a body, and --method GET sends none")
    body = _editable_body(source, body_format)
    if fresh:
        refresh_message_id(body)
    for path, value in options.assignments:
        apply_assignment(body, path, value)
    try:
        resource, key = resource_of(body)
    except ReplaySourceError as exc:
        raise ReplaySourceError(f"{source.label}: {exc}") from None
    if target.method == "POST" and key is None:
        raise ReplaySourceError(
            f"{source.label} is a full {resource} as the API returns it, not a webhook body: "
            "send it with --method GET (a notification with its id) or pick an event sample"
        )
    resource_id = id_of(body) if target.method == "GET" else None
    try:
        url = request_url(target, resource, resource_id)
    except ReplaySourceError as exc:
        raise ReplaySourceError(f"{source.label}: {exc}") from None
    event_name = body.get("eventName") if isinstance(body.get("eventName"), str) else None
    data = content_type = None
    if target.method == "POST":
        edited = bool(fresh or options.assignments)
        if body_format == "xml":
            data = _xml_body(source, body, key, edited)
            content_type = XML_CONTENT_TYPE
        else:
            data = _json_body(source, body, edited)
            content_type = "application/json"
    return _Prepared(
        source.label,
        event_name,
        message_id_of(body),
        url,
        _shown(url),
        data,
        target.method,
        content_type,
    )


def _editable_body(source: Source, body_format: BodyFormat) -> dict[str, Any]:
    """A copy of the body to edit; for tXML from a JSON text, with its numbers' own digits."""
    text = source.raw if source.raw is not None else source.json_text
    if body_format == "xml" and source.body_format == "json" and text is not None:
        body = json_for_xml(text)
        if isinstance(body, dict):
            return body
    return copy.deepcopy(source.body)


def _xml_body(source: Source, body: dict[str, Any], key: str | None, edited: bool) -> bytes:
    """The body as tXML: a tXML source as it is unless edited, anything else rendered."""
    if key not in TXML_PAYLOAD_KEYS:
        hint = "send it as JSON" if source.body_format == "xml" else "leave out --format xml"
        raise ReplaySourceError(
            f"{source.label}: Tradecloud sends shipments as JSON only (tXML is a format of the "
            f"order webhook); {hint}"
        )
    if source.body_format == "xml" and source.raw is not None and not edited:
        return source.raw
    try:
        return to_xml(body, root=source.xml_root or DEFAULT_ROOT)
    except PayloadError as exc:
        raise ReplaySourceError(f"{source.label}: cannot be sent as tXML: {exc}") from None


def _json_body(source: Source, body: dict[str, Any], edited: bool) -> bytes:
    if source.body_format == "xml":
        raise ReplaySourceError(
            f"{source.label} is tXML, which cannot be turned back into Tradecloud's JSON (its "
            "values carry no types); leave out --format json to send it as it is"
        )
    return source.raw if source.raw is not None and not edited else orjson.dumps(body)


def _prepare_notification(source: Source, target: Target, options: ReplayOptions) -> _Prepared:
    """A stored GET notification goes out as one: GET with its id, no body to edit."""
    assert source.notification is not None
    if options.assignments:
        raise ReplaySourceError(
            f"{source.label} is a GET notification: it has no body for --set to change"
        )
    resource, resource_id = source.notification
    url = request_url(target, resource, resource_id, method="GET")
    return _Prepared(source.label, None, None, url, _shown(url), None, "GET")


def _shown(url: str) -> str:
    """The URL for output: without any user:password written into it."""
    from yarl import URL

    return str(URL(url).with_user(None))


def ssl_context(target: Target) -> ssl.SSLContext | bool:
    from tcwebhook.trust import client_context

    return False if target.insecure else client_context(target.ca_file)


async def replay(
    sources: Sequence[Source],
    target: Target,
    options: ReplayOptions,
    on_result: Callable[[SendResult], None] | None = None,
) -> ReplayReport:
    """Send the events (in order, or ``count`` of them with ``concurrency`` in flight)."""
    import aiohttp

    load_mode = options.count is not None
    total = options.count if options.count is not None else len(sources)
    fresh = options.fresh_ids or load_mode
    # Prepare everything first, so a bad source stops the run before anything is sent.
    prepared = [prepare(source, target, options, fresh=False) for source in sources]
    results: list[SendResult | None] = [None] * total
    context = ssl_context(target)
    connector = aiohttp.TCPConnector(ssl=context, limit=options.concurrency)
    timeout = aiohttp.ClientTimeout(total=options.timeout)
    next_index = 0
    answered = False
    abort: list[TcwebhookError] = []
    started = time.perf_counter()

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal next_index, answered
        while next_index < total and not abort:
            index = next_index
            next_index += 1
            source = sources[index % len(sources)]
            request = prepare(source, target, options, fresh) if fresh else prepared[index]
            try:
                result = await _send(session, request, target, options)
            except TcwebhookError as exc:  # TLS failure: no later event would fare better
                abort.append(exc)
                return
            if result.status is None and not answered:
                # Unreachable from the start: an environment error, not a verdict on events.
                abort.append(_unreachable(result))
                return
            answered = True
            results[index] = result
            if on_result is not None:
                on_result(result)

    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers=_headers(target)
    ) as session:
        workers = [worker(session) for _ in range(min(options.concurrency, total))]
        await asyncio.gather(*workers)
    if abort:
        raise abort[0]
    return ReplayReport([r for r in results if r is not None], time.perf_counter() - started)


def _unreachable(result: SendResult) -> ReplayTargetError:
    return ReplayTargetError(
        f"no answer from {_origin(result.url)}: {result.error}; check the URL, and that the "
        "server is running (tcwebhook serve)"
    )


def _headers(target: Target) -> dict[str, str]:
    from tcwebhook import __version__

    headers = {"User-Agent": f"{USER_AGENT}/{__version__}"}
    if target.authorization:
        headers["Authorization"] = target.authorization
    return headers


async def _send(
    session: aiohttp.ClientSession, request: _Prepared, target: Target, options: ReplayOptions
) -> SendResult:
    import aiohttp

    headers = {"Content-Type": request.content_type} if request.content_type else {}
    started = time.perf_counter()
    attempt = 0
    while True:
        attempt += 1
        attempt_started = time.perf_counter()
        status: int | None = None
        latency: float | None = None
        error: str | None = None
        text: str | None = None
        try:
            async with session.request(
                request.method,
                request.url,
                data=request.data,
                headers=headers,
                allow_redirects=False,  # Tradecloud never follows redirects
            ) as response:
                raw = await response.content.read(_MAX_KEPT_BODY)
                status = response.status
            latency = (time.perf_counter() - attempt_started) * 1000
            if options.keep_response:
                text = raw.decode("utf-8", errors="replace")
        except aiohttp.ClientSSLError as exc:
            raise _tls_error(request.url, exc) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = _describe(exc, options.timeout)
        if options.retry.should_retry(status, attempt):
            await asyncio.sleep(options.retry.delay(attempt))
            continue
        return SendResult(
            request.source,
            request.event_name,
            request.message_id,
            request.method,
            request.shown_url,
            status,
            attempt,
            latency,
            (time.perf_counter() - started) * 1000,
            error,
            text,
        )


def _tls_error(url: str, exc: aiohttp.ClientSSLError) -> TcwebhookError:
    import aiohttp

    reason = str(getattr(exc, "strerror", None) or exc)
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cert_error = exc.certificate_error
        reason = (
            getattr(cert_error, "verify_message", None)
            or getattr(cert_error, "reason", None)
            or str(cert_error)
        )
        return ReplayTargetError(
            f"TLS verification of {_origin(url)} failed: {reason}; if the server uses a private "
            "or development CA, pass it with --ca-file CA.pem"
        )
    return ReplayTargetError(
        f"TLS handshake with {_origin(url)} failed: {reason}; check that the URL is an HTTPS "
        "endpoint with TLS 1.2 or newer (pass a private CA with --ca-file)"
    )


def _describe(exc: BaseException, timeout: float) -> str:
    import aiohttp

    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return str(exc.os_error.strerror or exc.os_error) if exc.os_error else str(exc)
    return str(exc) or type(exc).__name__


def _origin(url: str) -> str:
    from yarl import URL

    parsed = URL(url)
    return f"{parsed.scheme}://{parsed.host}:{parsed.port}"
