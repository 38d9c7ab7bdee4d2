"""Send webhook events to an endpoint exactly as Tradecloud does, and say what Tradecloud would
make of each answer (docs/tradecloud.md#methods, #status-codes-and-retries).

The library returns result objects and prints nothing. Sources are JSON files, directories,
standard input or built-in samples; the target is a URL as entered in the Tradecloud portal or
the local ``tcwebhook serve`` from the same configuration.
"""

from __future__ import annotations

import asyncio
import copy
import math
import ssl
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

import orjson

from tcwebhook import protocol
from tcwebhook.errors import ReplaySourceError, ReplayTargetError, TcwebhookError
from tcwebhook.protocol import ORDER_PAYLOAD_KEYS, SHIPMENT_PAYLOAD_KEYS, Resource, Verdict

if TYPE_CHECKING:
    import aiohttp

    from tcwebhook.config import Settings

Method = Literal["POST", "GET"]
IdIn = Literal["path", "query"]
USER_AGENT = "tcwebhook-replay"
_MAX_KEPT_BODY = 64 * 1024


# ------------------------------------------------------------------------------------------
# Sources


@dataclass(frozen=True)
class Source:
    """One event to send: where it came from, and its JSON body."""

    label: str
    body: dict[str, Any]
    raw: bytes | None = None  # the exact bytes to send when the body is not edited


STORED_PREFIX = "event:"


def load_sources(
    specs: Sequence[str], stdin: BinaryIO | None = None, store_url: str | None = None
) -> list[Source]:
    """Resolve SOURCE arguments: a JSON file, a directory of them, ``-``, a sample name, or
    ``event:ID`` (a stored event, sent with its original bytes)."""
    from tcwebhook import samples

    sources: list[Source] = []
    for spec in specs:
        path = Path(spec)
        if spec.startswith(STORED_PREFIX) and store_url is not None:
            sources.append(_stored_event(spec[len(STORED_PREFIX) :], store_url))
        elif spec == "-":
            if stdin is None:
                raise ReplaySourceError("'-' needs JSON on standard input")
            sources.append(Source("<stdin>", _parse_json(stdin.read(), "<stdin>")))
        elif path.is_dir():
            files = sorted(p for p in path.glob("*.json") if p.is_file())
            if not files:
                raise ReplaySourceError(f"directory {spec} holds no *.json files")
            sources.extend(_read_file(file) for file in files)
        elif path.exists() or spec.endswith(".json") or "/" in spec or "\\" in spec:
            sources.append(_read_file(path))
        else:
            sample = samples.get_sample(spec)
            sources.append(Source(sample.name, sample.body))
    if not sources:
        raise ReplaySourceError("nothing to send: give a file, a directory, '-' or a sample name")
    return sources


def _stored_event(event_id: str, store_url: str) -> Source:
    from tcwebhook.store import open_store

    if not event_id.isdigit():
        raise ReplaySourceError(f"'{STORED_PREFIX}{event_id}': the event id must be a number")
    store = open_store(store_url)
    try:
        event = store.get_event(int(event_id))
    finally:
        store.close()
    label = f"event #{event.id}"
    if not event.body:
        raise ReplaySourceError(
            f"{label} is a GET notification for {event.resource_id}: it has no body to re-send; "
            f"use 'tcwebhook replay --method GET' with a body holding that id"
        )
    return Source(label, _parse_json(event.body, label), raw=event.body)


def _read_file(path: Path) -> Source:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ReplaySourceError(
            f"file {path} does not exist (for a built-in sample, give its name without '.json')"
        ) from None
    except OSError as exc:
        raise ReplaySourceError(f"cannot read {path}: {exc.strerror or exc}") from None
    return Source(str(path), _parse_json(data, str(path)))


def _parse_json(data: bytes, where: str) -> dict[str, Any]:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ReplaySourceError(
            f"{where}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}"
        ) from None
    if not isinstance(value, dict):
        raise ReplaySourceError(f"{where}: must hold a JSON object (a webhook body)")
    return value


# ------------------------------------------------------------------------------------------
# Editing bodies


def parse_assignment(text: str) -> tuple[str, Any]:
    """``PATH=VALUE`` from ``--set``: VALUE is JSON when it parses as JSON, else a string."""
    path, sep, raw = text.partition("=")
    path = path.strip()
    if not sep or not path or any(not part for part in path.split(".")):
        raise ReplaySourceError(
            f"--set {text!r}: expected PATH=VALUE with a dotted path, "
            "e.g. --set eventName=OrderLinesRejectedBySupplier"
        )
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = raw
    return path, value


def apply_assignment(body: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted path; numeric parts index arrays, missing objects are created."""
    node: Any = body
    parts = path.split(".")
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ReplaySourceError(
                    f"--set {path}: '{where}' is not an index of an array of {len(node)}"
                )
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                if not isinstance(node.get(part), dict | list):
                    node[part] = {}
                node = node[part]
        else:
            raise ReplaySourceError(f"--set {path}: '{where}' is inside a value, not an object")


def refresh_message_id(body: dict[str, Any]) -> str:
    """Give the body a new ``meta.messageId`` (top level, and inside the event if it has one)."""
    message_id = str(uuid.uuid4())
    meta = body.get("meta")
    if not isinstance(meta, dict):
        meta = body["meta"] = {}
    meta["messageId"] = message_id
    for key in ORDER_PAYLOAD_KEYS + SHIPMENT_PAYLOAD_KEYS:
        payload = body.get(key)
        if isinstance(payload, dict) and isinstance(payload.get("meta"), dict):
            payload["meta"]["messageId"] = message_id
    return message_id


def message_id_of(body: dict[str, Any]) -> str | None:
    meta = body.get("meta")
    value = meta.get("messageId") if isinstance(meta, dict) else None
    return value if isinstance(value, str) else None


def resource_of(body: dict[str, Any]) -> tuple[Resource, str | None]:
    """Order or shipment, and the payload key (None for a full API object)."""
    for key in ORDER_PAYLOAD_KEYS:
        if key in body:
            return "order", key
    for key in SHIPMENT_PAYLOAD_KEYS:
        if key in body:
            return "shipment", key
    if "buyerOrder" in body or "supplierOrder" in body:
        return "order", None
    if "supplierShipment" in body or "loadCarriers" in body or "buyerShipment" in body:
        return "shipment", None
    raise ReplaySourceError(
        "the body has no payload key (orderEvent, singleDeliveryOrderEvent, "
        "orderDocumentsEvent or shipment) and is no order or shipment either"
    )


def id_of(body: dict[str, Any]) -> str | None:
    """The Tradecloud order or shipment id a GET notification would carry."""
    _, key = resource_of(body)
    holder = body.get(key) if key else body
    if not isinstance(holder, dict):
        return None
    for name in ("orderId", "id"):
        value = holder.get(name)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)
    return None


# ------------------------------------------------------------------------------------------
# Target


@dataclass(frozen=True)
class Target:
    """Where and how to send: the order and shipment URLs, trust and credentials."""

    order_url: str
    shipment_url: str
    ca_file: Path | None = None
    authorization: str | None = field(default=None, repr=False)
    insecure: bool = False
    method: Method = "POST"
    id_in: IdIn = "path"

    def url_for(self, resource: Resource) -> str:
        return self.order_url if resource == "order" else self.shipment_url


def resolve_target(
    settings: Settings,
    *,
    url: str | None = None,
    token: str | None = None,
    user: str | None = None,
    password: str | None = None,
    ca_file: Path | None = None,
    insecure: bool = False,
    method: Method = "POST",
    id_in: IdIn = "path",
) -> Target:
    """The target from flags, else from the configuration's local server (dev CA and token)."""
    if token and (user or password):
        raise ReplaySourceError("give either --token or --user/--password, not both")
    if bool(user) != bool(password):
        raise ReplaySourceError("--user and --password go together")
    _check_credential_text(token=token, user=user, password=password)
    authorization = None
    if token:
        authorization = protocol.bearer_header(protocol.without_bearer(token))
    elif user and password:
        authorization = protocol.basic_header(user, password)
    if url is not None:
        from tcwebhook.urls import parse_url

        parse_url(
            url,
            "--url",
            hint=" (Tradecloud sends webhooks over HTTPS only)",
            error=ReplaySourceError,
        )
        if authorization is None:
            authorization = _configured_authorization(settings)
        return Target(url, url, ca_file, authorization, insecure, method, id_in)
    from tcwebhook.local import local_target

    local = local_target(settings)
    if ca_file is None and local.ca_file is not None and not local.ca_file.exists():
        raise ReplayTargetError(
            f"'tcwebhook serve' has not created its development CA yet ({local.ca_file}): "
            "start 'tcwebhook serve' with the same configuration once, or give --url "
            "(and --ca-file) to send elsewhere"
        )
    return Target(
        local.order_url,
        local.shipment_url,
        ca_file or local.ca_file,
        authorization or local.authorization,
        insecure,
        method,
        id_in,
    )


def _check_credential_text(**values: str | None) -> None:
    """A line break in a header value would end the header (or make aiohttp raise)."""
    for name, value in values.items():
        if value and any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
            raise ReplaySourceError(f"--{name} holds a control character (a line break?)")
    if values.get("user") and ":" in str(values["user"]):
        raise ReplaySourceError("--user must not contain ':' (HTTP Basic cannot carry it)")


BEARER_COMMAND_TIMEOUT = 60.0


def bearer_from_command(command: str) -> str:
    """The token a command prints on stdout (e.g. ``az account get-access-token --query
    accessToken -o tsv``): how a short-lived Entra token reaches replay without a shell history."""
    import shlex
    import subprocess

    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ReplaySourceError(
            f"--bearer-from-command: cannot split the command ({exc})"
        ) from None
    if not argv:
        raise ReplaySourceError("--bearer-from-command needs a command")
    try:
        finished = subprocess.run(
            argv, capture_output=True, timeout=BEARER_COMMAND_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise ReplaySourceError(f"--bearer-from-command: cannot run {argv[0]}: {reason}") from None
    # Neither stdout nor stderr is echoed: either may hold the token.
    if finished.returncode != 0:
        raise ReplaySourceError(
            f"--bearer-from-command: {argv[0]} exited with code {finished.returncode}"
        )
    lines = finished.stdout.decode("utf-8", "replace").strip().splitlines()
    token = lines[-1].strip() if lines else ""
    if not token or any(character.isspace() for character in token):
        raise ReplaySourceError(
            f"--bearer-from-command: {argv[0]} printed no token (one line, no spaces, expected)"
        )
    return protocol.without_bearer(token)


def _configured_authorization(settings: Settings) -> str | None:
    if settings.auth.type == "entra":
        return None
    from tcwebhook.local import authorization_header

    return authorization_header(settings.auth)


def request_url(target: Target, resource: Resource, resource_id: str | None) -> str:
    """The URL one event goes to; for GET, with the id in the placeholder, path or query."""
    from urllib.parse import quote

    from yarl import URL

    base = target.url_for(resource)
    if target.method == "POST":
        return base
    if resource_id is None:
        raise ReplaySourceError(
            f"--method GET needs the {resource} id, and the body has none "
            f"({'orderId' if resource == 'order' else 'shipment.id'})"
        )
    placeholder = "{orderId}" if resource == "order" else "{shipmentId}"
    if placeholder in base:
        return base.replace(placeholder, quote(resource_id, safe=""))
    if target.id_in == "path":
        return base.rstrip("/") + "/" + quote(resource_id, safe="")
    name = "orderId" if resource == "order" else "shipmentId"
    return str(URL(base).update_query({name: resource_id}))


# ------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class SendResult:
    """One event as sent, the final answer, and what Tradecloud would do with it."""

    source: str
    event_name: str | None
    message_id: str | None
    method: Method
    url: str
    status: int | None
    attempts: int
    latency_ms: float | None  # of the last attempt
    total_ms: float  # all attempts and back-off waits
    error: str | None = None
    response_body: str | None = None

    @property
    def verdict(self) -> Verdict:
        return classify(self.status)

    @property
    def delivered(self) -> bool:
        return self.verdict == "delivered"

    def to_json(self, with_body: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "source": self.source,
            "eventName": self.event_name,
            "messageId": self.message_id,
            "method": self.method,
            "url": self.url,
            "status": self.status,
            "attempts": self.attempts,
            "latencyMs": _round(self.latency_ms),
            "totalMs": _round(self.total_ms),
            "verdict": self.verdict,
            "tradecloud": TRADECLOUD_REACTION[self.verdict],
            "error": self.error,
        }
        if with_body:
            data["responseBody"] = self.response_body
        return data


TRADECLOUD_REACTION: dict[Verdict, str] = {
    "delivered": "delivered",
    "dropped": "dropped, not retried",
    "retried": "retried by Tradecloud with back-off",
    "undocumented": "not delivered; Tradecloud's handling of this status is undocumented",
    "no-answer": "no answer; Tradecloud's handling is undocumented (it may retry)",
}


# What Tradecloud does with an answer (docs/tradecloud.md#status-codes-and-retries).
classify = protocol.verdict


@dataclass(frozen=True)
class ReplayReport:
    results: list[SendResult]
    wall_seconds: float

    @property
    def all_delivered(self) -> bool:
        return bool(self.results) and all(result.delivered for result in self.results)

    @property
    def status_counts(self) -> dict[str, int]:
        counts = Counter(
            str(r.status) if r.status is not None else "no answer" for r in self.results
        )
        return dict(sorted(counts.items()))

    @property
    def verdict_counts(self) -> dict[str, int]:
        return dict(Counter(result.verdict for result in self.results))

    @property
    def throughput(self) -> float:
        return len(self.results) / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def latency_percentile(self, percent: float) -> float | None:
        """Nearest-rank percentile of the last-attempt latencies of answered events, in ms."""
        values = sorted(r.latency_ms for r in self.results if r.latency_ms is not None)
        if not values:
            return None
        rank = max(1, math.ceil(percent / 100 * len(values)))
        return values[rank - 1]

    def to_json(self, with_bodies: bool = False) -> dict[str, Any]:
        return {
            "sent": len(self.results),
            "delivered": sum(result.delivered for result in self.results),
            "allDelivered": self.all_delivered,
            "statusCounts": self.status_counts,
            "verdictCounts": self.verdict_counts,
            "durationSeconds": round(self.wall_seconds, 3),
            "throughputPerSecond": round(self.throughput, 1),
            "latencyMs": {
                name: _round(self.latency_percentile(percent))
                for name, percent in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100))
            },
            "results": [result.to_json(with_bodies) for result in self.results],
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


# ------------------------------------------------------------------------------------------
# Sending


@dataclass(frozen=True)
class RetryPolicy:
    """Tradecloud's sender: retry >500 and connection errors with exponential back-off."""

    enabled: bool = False
    max_attempts: int = 5
    initial_delay: float = 0.5
    max_delay: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ReplaySourceError("--max-attempts must be at least 1")
        if not (0 <= self.max_delay < math.inf and 0 <= self.initial_delay < math.inf):
            raise ReplaySourceError(
                f"--max-delay must be a number of seconds, 0 or more (got {self.max_delay})"
            )

    def delay(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (1-based)."""
        return min(self.max_delay, self.initial_delay * 2 ** (attempt - 1))

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


def prepare(source: Source, target: Target, options: ReplayOptions, fresh: bool) -> _Prepared:
    """The request for one event: body edited (--fresh-ids, then --set), URL by payload key."""
    body = copy.deepcopy(source.body)
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
    data = None
    if target.method == "POST":
        edited = fresh or options.assignments
        data = source.raw if source.raw is not None and not edited else orjson.dumps(body)
    return _Prepared(source.label, event_name, message_id_of(body), url, _shown(url), data)


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

    headers = {"Content-Type": "application/json"} if request.data is not None else {}
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
                target.method,
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
            target.method,
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
