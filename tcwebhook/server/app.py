"""The receiver as an aiohttp application, built from settings and a store.

Status codes follow Tradecloud's retry rules (docs/tradecloud.md#status-codes-and-retries): 2xx only
after the event is committed; 4xx for what a retry cannot fix; 503 for anything transient or
unexpected, because Tradecloud never retries a 500 and the event would be lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError

from tcwebhook import txml
from tcwebhook.auth import Principal, ReceiverAuth, Refusal
from tcwebhook.config import Settings
from tcwebhook.errors import PayloadError, StoreUnavailable, UnsupportedContentType
from tcwebhook.events import (
    Resource,
    WebhookEvent,
    check_depth,
    check_lengths,
    parse_notification,
    parse_webhook,
    parse_webhook_object,
)
from tcwebhook.requestlog import ReceiverFacts, auth_presence, explain, refused_record
from tcwebhook.server import proxy
from tcwebhook.server.headers import check_content_type, secret_header
from tcwebhook.server.proxy import ClientAddresses
from tcwebhook.server.recording import RequestRecorder, limits_of
from tcwebhook.store import AppendResult, NewEvent, Store, dedup_key, utc_now

if TYPE_CHECKING:
    from tcwebhook.metrics import Metrics

log = logging.getLogger("tcwebhook.server")

_ID_PARAMS: dict[str, Resource] = {"orderId": "order", "shipmentId": "shipment"}
_NO_WAIT = contextlib.nullcontext()


@dataclass(slots=True)
class RequestLog:
    """What happened to one request, for the console (never holds a secret)."""

    time: str
    method: str
    path: str
    status: int
    duration_ms: float
    kind: str | None = None
    event_name: str | None = None
    number: str | None = None
    resource_id: str | None = None
    changed_lines: int | None = None
    event_id: int | None = None
    duplicate: bool = False
    unknown_event: bool = False
    error: str | None = None
    client: str | None = None  # set when a proxy or server.allow_from is configured


RequestLogger = Callable[[RequestLog], None]
TaskRouter = Callable[[WebhookEvent], tuple[str, ...]]


def no_tasks(event: WebhookEvent) -> tuple[str, ...]:
    return ()


@dataclass(frozen=True)
class _Wiring:
    """The app's collaborators besides settings and store."""

    auth: ReceiverAuth
    request_logger: RequestLogger | None = None
    task_router: TaskRouter = no_tasks
    on_tasks_stored: Callable[[], None] | None = None  # wakes the delivery worker
    metrics: Metrics | None = None
    addresses: ClientAddresses | None = None  # proxy headers and allow_from; None: neither
    recorder: RequestRecorder | None = None  # the request log of refused requests
    facts: ReceiverFacts = dataclasses.field(default_factory=ReceiverFacts)


SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
_WIRING = web.AppKey("wiring", _Wiring)
RECEIVER_AUTH = web.AppKey("receiver_auth", ReceiverAuth)  # SIGHUP swaps credentials in it
REQUEST_RECORDER = web.AppKey("request_recorder", RequestRecorder)  # absent: requests.enabled off


class _ClientGone(Exception):
    """The client closed the connection before its request was read: nobody to answer."""


class _UndecodableBody(PayloadError):
    """A corrupt gzip/deflate body or chunked framing: 400, and the rest is not read."""


class _BodyTimeout(Exception):
    """The body did not arrive within server.limits.body_timeout: 503, so a real sender retries.

    Not a StoreUnavailable: the store is fine, and must not be reported otherwise.
    """


@dataclass
class _Outcome:
    """What the handler learned about the request, for the log line."""

    event: WebhookEvent | None = None
    event_id: int | None = None
    duplicate: bool = False
    received_at: str | None = None
    client: str | None = None
    body: bytes = b""  # for a refused request's excerpt


# aiohttp >= 3.13 wants typed request keys; older releases take plain strings.
_OUTCOME: Any = web.RequestKey("outcome", _Outcome) if hasattr(web, "RequestKey") else "outcome"


def create_app(
    settings: Settings,
    store: Store,
    *,
    request_logger: RequestLogger | None = None,
    task_router: TaskRouter = no_tasks,
    on_tasks_stored: Callable[[], None] | None = None,
    metrics: Metrics | None = None,
) -> web.Application:
    """The receiver app; ``settings.auth`` must hold credentials (``plan`` adds the dev token)."""
    app = web.Application(
        client_max_size=settings.server.max_body_bytes,
        middlewares=[_receive_middleware],
    )
    app[SETTINGS] = settings
    app[STORE] = store
    auth = app[RECEIVER_AUTH] = ReceiverAuth(settings)
    addresses = ClientAddresses(settings.server) if proxy.needed(settings.server) else None
    recorder = None
    if settings.requests.enabled:
        recorder = app[REQUEST_RECORDER] = RequestRecorder(store, limits_of(settings))
    facts = ReceiverFacts.from_settings(settings)
    app[_WIRING] = _Wiring(
        auth, request_logger, task_router, on_tasks_stored, metrics, addresses, recorder, facts
    )
    app.cleanup_ctx.append(_authenticating)
    if recorder is not None:
        app.cleanup_ctx.append(_recording)
    app.router.add_get("/healthz", _healthz, allow_head=True)
    paths = settings.server.paths
    routes: tuple[tuple[Resource, str], ...] = (
        ("order", paths.order),
        ("shipment", paths.shipment),
    )
    for resource, path in routes:
        app.router.add_post(path, _receive_post)
        app.router.add_put(path, _receive_post)  # legacy alias (docs/tradecloud.md#methods)
        by_query = _notification_handler(resource, from_path=False)
        app.router.add_get(path, by_query, allow_head=False)
        app.router.add_get(
            path + "/{resource_id:.+}",
            _notification_handler(resource, from_path=True),
            allow_head=False,
        )
    return app


async def _authenticating(app: web.Application) -> AsyncIterator[None]:
    """Key refresh for Entra runs beside the server, never in a request."""
    auth = app[RECEIVER_AUTH]
    await auth.start()
    yield
    await auth.stop()


async def _recording(app: web.Application) -> AsyncIterator[None]:
    """The request log's writer thread runs beside the server; at stop it writes what it holds."""
    recorder = app[REQUEST_RECORDER]
    recorder.start()
    yield
    await asyncio.to_thread(recorder.stop)


# ----------------------------------------------------------------------------------------------
# Handlers


async def _healthz(request: web.Request) -> web.Response:
    """200 only while the store can take events (a monitor or load balancer asks): after a
    failed commit, or when the write probe fails (disk full, deleted, locked), 503. The reason
    stays out of this unauthenticated answer; ``tcwebhook status`` tells it."""
    problem = await asyncio.to_thread(request.app[STORE].problem)
    if problem is None:
        return web.Response(text="ok")
    response = web.Response(status=503, text="unavailable: the event store cannot take events")
    response.headers[hdrs.RETRY_AFTER] = "5"
    return response


async def _receive_post(request: web.Request) -> web.Response:
    check_content_type(request)
    server = request.app[SETTINGS].server
    max_bytes, limits = server.max_body_bytes, server.limits
    if request.content_length is not None and request.content_length > max_bytes:
        raise _too_large(max_bytes)
    # A body that came with its head (most do) is read without arming a timer.
    waiting = _NO_WAIT if request.content.is_eof() else asyncio.timeout(limits.body_timeout)
    try:
        async with waiting:
            body = await request.read()  # aiohttp stops reading past client_max_size
    except web.HTTPRequestEntityTooLarge:
        raise _too_large(max_bytes) from None
    except TimeoutError:
        raise _BodyTimeout(
            f"the body did not arrive within server.limits.body_timeout ({limits.body_timeout:g} s)"
        ) from None
    except (HttpProcessingError, web.RequestPayloadError) as exc:
        # The answer closes the connection; without this, aiohttp would first try to read the
        # rest of the body, meet the same error and log it as unhandled.
        request.content.feed_eof()
        encoding = request.headers.get(hdrs.CONTENT_ENCODING) or "the declared framing"
        raise _UndecodableBody(
            f"the body cannot be decoded as {encoding[:40]} ({type(exc).__name__}); "
            "send it uncompressed or encoded correctly"
        ) from None
    except ConnectionError:
        raise _ClientGone from None
    request[_OUTCOME].body = body
    if txml.looks_like_xml(body, request.headers.get(hdrs.CONTENT_TYPE)):
        event = await _parse_txml(body, max_bytes, limits.max_json_depth)
    else:
        check_depth(body, limits.max_json_depth)
        event = parse_webhook(body)
    check_lengths(event, limits.max_id_length)
    # The store is awaited here rather than in a helper coroutine: one frame less per request.
    record = _record(request, event, body)
    return _stored(request, record, await request.app[STORE].append(record))


async def _parse_txml(body: bytes, max_bytes: int, max_depth: int) -> WebhookEvent:
    """tXML is read in a thread: a large order takes hundreds of milliseconds of pure Python,
    which must not hold the receiver's loop. The bytes are stored as they came."""
    fields = await asyncio.to_thread(txml.from_xml, body, txml.XmlLimits(max_bytes, max_depth))
    return parse_webhook_object(fields)


def _notification_handler(
    resource: Resource, *, from_path: bool
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def receive_notification(request: web.Request) -> web.Response:
        if from_path:
            event = parse_notification(resource, request.match_info["resource_id"])
        else:
            event = _notification_from_query(request, resource)
        check_lengths(event, request.app[SETTINGS].server.limits.max_id_length)
        record = _record(request, event, b"")
        return _stored(request, record, await request.app[STORE].append(record))

    return receive_notification


def _notification_from_query(request: web.Request, path_resource: Resource) -> WebhookEvent:
    for param, resource in _ID_PARAMS.items():
        if request.query.get(param):
            return parse_notification(resource, request.query[param])
    id_param = "orderId" if path_resource == "order" else "shipmentId"
    raise PayloadError(
        f"a GET webhook needs the {path_resource} id in the path ({request.path}/ID) "
        f"or in the query (?{id_param}=ID)"
    )


def _record(request: web.Request, event: WebhookEvent, body: bytes) -> NewEvent:
    """The row to store for ``event``; notes the event for the log line."""
    outcome: _Outcome = request[_OUTCOME]
    outcome.event = event
    received_at = outcome.received_at = utc_now()
    return NewEvent(
        received_at=received_at,
        kind=event.kind.value,
        event_name=event.event_name,
        message_id=event.message_id,
        dedup_key=_dedup_key(event, body),
        resource_id=event.resource_id,
        number=event.number,
        changed_lines=event.changed_lines,
        method=request.method,
        path=request.path_qs,
        headers={str(k): v for k, v in request.headers.items() if not secret_header(k)},
        body=body,
        tasks=request.app[_WIRING].task_router(event),
        change_key=event.change_key,
    )


def _stored(request: web.Request, record: NewEvent, result: AppendResult) -> web.Response:
    """The answer once ``record`` is committed."""
    outcome: _Outcome = request[_OUTCOME]
    outcome.event_id, outcome.duplicate = result.id, result.duplicate
    wiring = request.app[_WIRING]
    wake = wiring.on_tasks_stored
    if record.tasks and not result.duplicate and wake is not None:
        wake()
    status = "duplicate" if result.duplicate else "stored"
    if wiring.metrics is not None:
        wiring.metrics.events.labels(record.kind, status).inc()
    return _json({"status": status, "id": result.id})


def _json(data: object, status: int = 200) -> web.Response:
    # orjson: this runs for every request, and the stdlib encoder costs several times more
    # (docs/performance-notes.md#1-json-log-lines-encoded-by-orjson).
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _dedup_key(event: WebhookEvent, body: bytes) -> str | None:
    return dedup_key(event.kind.is_notification, event.message_id, body)


def _too_large(max_bytes: int) -> PayloadError:
    error = PayloadError(
        f"body is larger than server.max_body_bytes ({max_bytes} bytes); raise that setting "
        "if Tradecloud really sends such large events"
    )
    error.status = 413
    return error


# ----------------------------------------------------------------------------------------------
# The middleware: authentication, then one place that turns every outcome into a status code.
# One middleware rather than two: each layer costs a coroutine frame on every request.


@web.middleware
async def _receive_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    started = time.perf_counter()
    error: str | None = None
    cause = ""
    wiring = request.app[_WIRING]
    request[_OUTCOME] = _Outcome()
    try:
        addresses = wiring.addresses
        if addresses is not None and request.path != "/healthz":
            client = request[_OUTCOME].client = addresses.client(request)
            if not addresses.allowed(client):
                return _refused(request, _NOT_ALLOWED, started)
        if request.path != "/healthz":
            # The authenticator answers at once unless it must fetch keys first: no extra
            # coroutine per request for Basic and Bearer.
            authenticator = wiring.auth.for_path(request.path)
            header = request.headers.get(hdrs.AUTHORIZATION)
            result = authenticator.check(header)
            if result is None:
                result = await authenticator.authenticate(header)
            if result.__class__ is not Principal:
                return _refused(request, result, started)  # type: ignore[arg-type]
        response = await handler(request)
    except PayloadError as exc:
        error = str(exc)
        cause = _payload_cause(exc)
        response = _error_response(exc.status, error)
        if exc.status == 413 or isinstance(exc, _UndecodableBody):
            response.force_close()  # the rest of the body was never read
    except _BodyTimeout as exc:
        error, cause = str(exc), "body_timeout"
        response = _error_response(503, error)
        response.headers[hdrs.RETRY_AFTER] = "5"
        response.force_close()  # the rest of the body may still be on its way
    except StoreUnavailable as exc:
        error, cause = str(exc), "store_unavailable"
        response = _error_response(503, "the event could not be stored right now; retry later")
        response.headers[hdrs.RETRY_AFTER] = "5"
    except _ClientGone:
        # Nothing can be sent; aiohttp drops this response with the closed connection.
        error = "the client closed the connection before sending the whole body"
        cause = "client_gone"
        response = _error_response(400, error)
        response.force_close()
    except web.HTTPException as exc:  # routing: 404 and 405
        error = exc.reason
        cause = _ROUTING_CAUSES.get(exc.status, "routing")  # explain words others by status
        response = _error_response(exc.status, exc.reason.lower())
        if hdrs.ALLOW in exc.headers:
            response.headers[hdrs.ALLOW] = exc.headers[hdrs.ALLOW]
    except Exception as exc:  # never a 500: Tradecloud would drop the event for good
        error, cause = f"unexpected error: {type(exc).__name__}", "unexpected"
        _log_unexpected(request, exc)
        response = _error_response(503, "the event could not be processed right now; retry later")
        response.headers[hdrs.RETRY_AFTER] = "5"
    if wiring.metrics is not None:
        _count(wiring.metrics, request, response.status, started)
    if wiring.request_logger is not None:
        _log(request, response.status, started, error)
    if cause and wiring.recorder is not None:
        _record_refusal(request, response.status, cause, error, started)
    return response


_ROUTING_CAUSES = {404: "not_found", 405: "method_not_allowed"}


def _payload_cause(exc: PayloadError) -> str:
    """The request log's cause of a refused body (requestlog/explain.py)."""
    if exc.status == 413:
        return "too_large"
    if isinstance(exc, UnsupportedContentType):
        return "content_type"
    if isinstance(exc, _UndecodableBody):
        return "undecodable_body"
    if "GET webhook" in str(exc):
        return "no_resource_id"
    return "invalid_body"


def _record_refusal(
    request: web.Request, status: int, cause: str, detail: str | None, started: float
) -> None:
    """Hand a refused request to the request log: built and counted in memory, written later
    by its thread; whatever goes wrong here must not touch the answer."""
    wiring = request.app[_WIRING]
    if wiring.recorder is None or request.path == "/healthz":
        return
    try:
        outcome: _Outcome = request[_OUTCOME]
        headers = request.headers
        authorization = headers.get(hdrs.AUTHORIZATION)
        explained = explain(
            status,
            cause,
            wiring.facts,
            path=request.path,
            method=request.method,
            auth=auth_presence(authorization),
            detail=detail,
        )
        record = refused_record(
            time=utc_now(),
            method=request.method,
            path=request.path,
            status=status,
            reason=explained.reason,
            fix=explained.fix,
            duration_ms=(time.perf_counter() - started) * 1000,
            client=outcome.client if outcome.client is not None else request.remote,
            content_type=headers.get(hdrs.CONTENT_TYPE),
            size=len(outcome.body) if outcome.body else request.content_length,
            authorization=authorization,
            body=outcome.body,
            tradecloud=explained.tradecloud,
        )
        wiring.recorder.offer(record)
    except Exception:  # the log is a help, the answer is the duty
        log.exception("the request log could not take a refused request")


def _log_unexpected(request: web.Request, exc: Exception) -> None:
    """One line for a bug: the exception's type and where it was raised, never its message or
    traceback, which may quote the payload (an order's contents, a credential in a header)."""
    frames = traceback.extract_tb(exc.__traceback__)
    place = "an unknown place"
    if frames:
        place = f"{Path(frames[-1].filename).name}:{frames[-1].lineno} in {frames[-1].name}"
    log.error(
        "unexpected %s while receiving %s %s (raised at %s); answered 503 so Tradecloud retries",
        type(exc).__name__,
        request.method,
        _route(request),
        place,
    )


_NOT_ALLOWED = Refusal(
    "not_allowed", "this client address may not deliver webhooks (server.allow_from)", 403
)


def _refused(request: web.Request, refusal: Refusal, started: float) -> web.Response:
    response = _error_response(refusal.status, refusal.message)
    if refusal.challenge is not None:
        response.headers[hdrs.WWW_AUTHENTICATE] = refusal.challenge
    if refusal.retry_after is not None:
        response.headers[hdrs.RETRY_AFTER] = str(refusal.retry_after)
    wiring = request.app[_WIRING]
    if wiring.metrics is not None:
        wiring.metrics.auth_failures.labels(refusal.reason).inc()
        _count(wiring.metrics, request, response.status, started)
    if wiring.request_logger is not None:
        _log(request, response.status, started, refusal.message)
    if wiring.recorder is not None:
        cause = refusal.reason if refusal is _NOT_ALLOWED else f"auth.{refusal.reason}"
        _record_refusal(request, response.status, cause, None, started)
    return response


def _count(metrics: Metrics, request: web.Request, status: int, started: float) -> None:
    route = _route(request)
    metrics.requests.labels(route, request.method, str(status)).inc()
    metrics.request_duration.labels(route).observe(time.perf_counter() - started)


def _route(request: web.Request) -> str:
    # The route template, never the path: a path may hold an order id.
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def _error_response(status: int, message: str) -> web.Response:
    return _json({"error": message}, status=status)


def _log(request: web.Request, status: int, started: float, error: str | None) -> None:
    logger = request.app[_WIRING].request_logger
    if logger is None or request.path == "/healthz":
        return
    outcome: _Outcome = request[_OUTCOME]
    event = outcome.event
    time_ = outcome.received_at or utc_now()
    duration_ms = (time.perf_counter() - started) * 1000
    # Positional arguments: a dict of details spread as keywords cost more than the line itself.
    if event is None:
        entry = RequestLog(time_, request.method, request.path, status, duration_ms, error=error)
        if outcome.client is not None:
            entry = dataclasses.replace(entry, client=outcome.client)
    else:
        entry = RequestLog(
            time_,
            request.method,
            request.path,
            status,
            duration_ms,
            event.kind.value,
            event.event_name,
            event.number,
            event.resource_id,
            None if event.kind.is_notification else len(event.changed_lines),
            outcome.event_id,
            outcome.duplicate,
            not event.known_event_name,
            error,
            outcome.client,
        )
    logger(entry)
