"""Reconcile: poll Tradecloud for what changed, compare with the store, store what was missed.

A webhook can be missed without the receiver ever seeing a request (endpoint unreachable, the
integration switched off, an event name not enabled). Tradecloud's polling endpoints
(docs/tradecloud.md#api-polling) list every order or shipment updated after an instant; each one
whose change the store does not hold yet becomes a *recovered event* that is shown and delivered
like a received one. ``tcwebhook reconcile`` and the timer in ``serve`` both call ``reconcile``; it
prints nothing and returns a report.

One change is stored once. A change is identified by the object id and its ``lastUpdatedAt``
(``events.change_key``): a recovered event uses that key as its dedup key, a webhook carries it
beside its ``messageId``. So a rerun finds its own events, a webhook that came first makes the
poll see the change as known, and a late webhook for a change already recovered is answered as
a duplicate of the recovered event.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

from tcwebhook import changes
from tcwebhook.errors import (
    EXIT_CHECK_FAILED,
    ApiAccessDenied,
    ApiCredentialsError,
    ApiError,
    ConfigError,
    TcwebhookError,
)
from tcwebhook.events import WebhookEvent, change_key
from tcwebhook.protocol import PAYLOAD_KEY_OF_KIND, PAYLOAD_KEYS, EventKind, Resource
from tcwebhook.store import KnownObject, NewEvent, Store, utc_now

if TYPE_CHECKING:
    from tcwebhook.config import Settings
    from tcwebhook.tradecloud import PollEndpoint, TradecloudClient

log = logging.getLogger("tcwebhook.reconcile")

LEASE_NAME = "reconcile"
MIN_LEASE_SECONDS = 600.0  # a run holds the lease at least this long (a crashed holder's lapses)
MAX_PAGES = 10_000  # a bound on one endpoint's paging (a million objects), whatever total says
# Derived message ids: uuid5 of the change key in this namespace, the same on every run.
MESSAGE_ID_NAMESPACE = uuid.UUID("5f0f3d2c-8c1e-4f8a-9a53-7e2b1c6d9e40")

ProgressCallback = Callable[[str, int, int], None]  # endpoint, objects read, total


@dataclass(frozen=True)
class PollSource:
    """One poll endpoint and how its objects map onto stored events."""

    endpoint: PollEndpoint
    resource: Resource
    recovered_kind: EventKind
    payload_key: str  # the key a webhook of this kind carries its object under
    change_kinds: tuple[str, ...]  # the stored kinds whose events carry this object's changes
    notification_kind: str  # GET notifications whose fetched object counts as known


def _values(*kinds: EventKind) -> tuple[str, ...]:
    return tuple(kind.value for kind in kinds)  # plain text for every store's driver


ORDERS = PollSource(
    "order-search/poll",
    "order",
    EventKind.ORDER_RECOVERED,
    PAYLOAD_KEY_OF_KIND[EventKind.ORDER],
    _values(EventKind.ORDER, EventKind.SINGLE_DELIVERY_ORDER, EventKind.ORDER_RECOVERED),
    EventKind.ORDER_NOTIFICATION.value,
)
SINGLE_DELIVERY_ORDERS = PollSource(
    "order-search/poll/single-delivery",
    "order",
    EventKind.ORDER_RECOVERED,
    PAYLOAD_KEY_OF_KIND[EventKind.SINGLE_DELIVERY_ORDER],
    ORDERS.change_kinds,
    ORDERS.notification_kind,
)
SHIPMENTS = PollSource(
    "shipment/poll",
    "shipment",
    EventKind.SHIPMENT_RECOVERED,
    PAYLOAD_KEY_OF_KIND[EventKind.SHIPMENT],
    _values(EventKind.SHIPMENT, EventKind.SHIPMENT_RECOVERED),
    EventKind.SHIPMENT_NOTIFICATION.value,
)


# ------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class RecoveredChange:
    """A change no webhook delivered: stored (``event_id``) or, with --dry-run, only listed."""

    kind: str
    resource_id: str
    number: str | None
    last_updated_at: str
    changed_lines: tuple[str, ...]
    message_id: str
    event_id: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "resource_id": self.resource_id,
            "number": self.number,
            "last_updated_at": self.last_updated_at,
            "changed_lines": list(self.changed_lines),
            "message_id": self.message_id,
            "event_id": self.event_id,
        }


@dataclass
class EndpointResult:
    """What one poll endpoint gave and what became of it."""

    endpoint: str
    kind: str
    since: str  # the lastUpdatedAfter sent
    cursor_before: str | None
    until: str | None = None
    polled: int = 0
    known: int = 0
    after_until: int = 0  # polled, but updated after --until: left for a later run
    unusable: int = 0  # without an id or a readable lastUpdatedAt
    pages: int = 0
    total: int | None = None
    recovered: list[RecoveredChange] = field(default_factory=list)
    cursor_after: str | None = None
    complete: bool = False

    def to_json(self, include_events: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "endpoint": self.endpoint,
            "kind": self.kind,
            "since": self.since,
            "until": self.until,
            "total": self.total,
            "pages": self.pages,
            "polled": self.polled,
            "known": self.known,
            "recovered": len(self.recovered),
            "after_until": self.after_until,
            "unusable": self.unusable,
            "cursor_before": self.cursor_before,
            "cursor_after": self.cursor_after,
            "complete": self.complete,
        }
        if include_events:
            data["events"] = [change.to_json() for change in self.recovered]
        return data


@dataclass
class ReconcileReport:
    """One run: per endpoint what was polled, known and recovered; ``error`` if it stopped."""

    started_at: str
    dry_run: bool
    trigger: str  # "cli" or "serve"
    endpoints: list[EndpointResult] = field(default_factory=list)
    finished_at: str | None = None
    error: str | None = None
    error_exit_code: int = EXIT_CHECK_FAILED

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def polled(self) -> int:
        return sum(result.polled for result in self.endpoints)

    @property
    def known(self) -> int:
        return sum(result.known for result in self.endpoints)

    @property
    def recovered(self) -> list[RecoveredChange]:
        return [change for result in self.endpoints for change in result.recovered]

    def recovered_by_kind(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for change in self.recovered:
            counts[change.kind] = counts.get(change.kind, 0) + 1
        return counts

    def to_json(self, include_events: bool = True) -> dict[str, Any]:
        """The shape of ``reconcile --json`` (and, without events, of ``status``)."""
        return {
            "ok": self.ok,
            "error": self.error,
            "dry_run": self.dry_run,
            "trigger": self.trigger,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "polled": self.polled,
            "known": self.known,
            "recovered": len(self.recovered),
            "recovered_by_kind": self.recovered_by_kind(),
            "endpoints": [result.to_json(include_events) for result in self.endpoints],
        }


# ------------------------------------------------------------------------------------------
# The run


def poll_sources(settings: Settings, orders: bool, shipments: bool) -> list[PollSource]:
    """The endpoints to poll: orders in the configured delivery mode, and shipments."""
    sources = []
    if orders:
        single = settings.reconcile.delivery_mode == "single-delivery"
        sources.append(SINGLE_DELIVERY_ORDERS if single else ORDERS)
    if shipments:
        sources.append(SHIPMENTS)
    return sources


def format_instant(instant: datetime) -> str:
    """``2025-04-23T10:01:53.812Z``: how Tradecloud writes instants."""
    return f"{instant:%Y-%m-%dT%H:%M:%S}.{instant.microsecond // 1000:03d}Z"


async def reconcile(
    settings: Settings,
    store: Store,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    orders: bool | None = None,
    shipments: bool | None = None,
    dry_run: bool = False,
    client: TradecloudClient | None = None,
    progress: ProgressCallback | None = None,
    trigger: str = "cli",
) -> ReconcileReport:
    """Poll, compare and store recovered events; record the run (unless ``dry_run``).

    Without ``since`` each endpoint continues from its cursor; an endpoint without one is a
    ``ConfigError``. API failures after the client's retries end the run with ``error`` set:
    what was stored stays stored, and the cursor of an unfinished endpoint does not move.
    """
    from tcwebhook.tradecloud import TradecloudClient

    orders = settings.reconcile.orders if orders is None else orders
    shipments = settings.reconcile.shipments if shipments is None else shipments
    sources = poll_sources(settings, orders, shipments)
    if not sources:
        raise ConfigError("nothing to reconcile: --no-orders and --no-shipments leave no endpoint")
    if since is not None and until is not None and until <= since:
        raise ConfigError("--until must be later than --since")
    starts = []
    for source in sources:
        cursor = await asyncio.to_thread(store.reconcile_cursor, source.endpoint)
        if since is None and cursor is None:
            raise ConfigError(
                f"reconcile has no cursor for {source.endpoint} yet: run it once with "
                "--since TIME (e.g. --since 2025-06-01T00:00:00Z); later runs continue from "
                "where Tradecloud's answer left off"
            )
        starts.append((source, format_instant(since) if since else cursor, cursor))
    report = ReconcileReport(utc_now(), dry_run, trigger)
    api = client or TradecloudClient.from_settings(settings)
    route = _task_router(settings)
    try:
        for source, start, cursor in starts:
            assert start is not None
            result = EndpointResult(
                source.endpoint,
                source.recovered_kind.value,
                start,
                cursor,
                format_instant(until) if until else None,
            )
            report.endpoints.append(result)
            await _poll_endpoint(api, store, source, result, until, dry_run, route, progress)
    except TcwebhookError as exc:
        report.error = str(exc)
        # The API failing after its retries: the run could not complete (1). Credentials,
        # access, configuration or the store: the user has to fix something first (2).
        unfinished = isinstance(exc, ApiError) and not isinstance(
            exc, ApiCredentialsError | ApiAccessDenied
        )
        report.error_exit_code = EXIT_CHECK_FAILED if unfinished else exc.exit_code
    finally:
        if client is None:
            await api.close()
        report.finished_at = utc_now()
    if not dry_run:
        await asyncio.to_thread(store.record_reconcile_run, report.to_json(include_events=False))
    return report


async def reconcile_configured_store(
    settings: Settings,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    orders: bool | None = None,
    shipments: bool | None = None,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
) -> ReconcileReport:
    """``reconcile`` on the configured store, opened for this run and closed after it."""
    from tcwebhook.store import open_store

    store = open_store(settings.store_url)
    try:
        return await reconcile(
            settings,
            store,
            since=since,
            until=until,
            orders=orders,
            shipments=shipments,
            dry_run=dry_run,
            progress=progress,
        )
    finally:
        store.close()


def _task_router(settings: Settings) -> Callable[[WebhookEvent], tuple[str, ...]]:
    from tcwebhook.delivery.routing import task_router

    return task_router(settings)


async def _poll_endpoint(
    api: TradecloudClient,
    store: Store,
    source: PollSource,
    result: EndpointResult,
    until: datetime | None,
    dry_run: bool,
    route: Callable[[WebhookEvent], tuple[str, ...]],
    progress: ProgressCallback | None,
) -> None:
    """Read every page of one endpoint, storing each page's recovered events as it comes."""
    newest: tuple[datetime, str] | None = None
    offset = 0
    previous: list[Any] = []
    while result.pages < MAX_PAGES:
        page = await api.poll(source.endpoint, result.since, offset)
        result.pages += 1
        result.total = page.total
        ids = [item.get("id") for item in page.data]
        if ids and ids == previous:
            raise ApiError(
                f"Tradecloud's {source.endpoint} poll sent the same page again at offset "
                f"{offset}; stopped without moving the cursor; run reconcile again later"
            )
        previous = ids
        instant = changes.parse_instant(page.last_updated_at)
        if instant is not None and page.last_updated_at and (newest is None or instant > newest[0]):
            newest = (instant, page.last_updated_at)
        await _process_page(store, source, result, page.data, until, dry_run, route)
        offset += len(page.data)
        if progress is not None:
            progress(source.endpoint, offset, max(page.total, offset))
        if not page.data or offset >= page.total:
            break
    if offset < (result.total or 0):
        # Ending short must not move the cursor: the poll's lastUpdatedAt is that of objects
        # this run never read.
        raise ApiError(
            f"Tradecloud's {source.endpoint} poll announced {result.total} objects but sent "
            f"{offset} in {result.pages} pages; stopped without moving the cursor; "
            "run reconcile again later"
        )
    result.complete = True
    result.cursor_after = _next_cursor(result, newest)
    # The cursor moves only after a complete, stored run over an open-ended window: with
    # --until the objects after it were left out, and a dry run stored nothing.
    if result.cursor_after != result.cursor_before and until is None and not dry_run:
        assert result.cursor_after is not None
        await asyncio.to_thread(store.set_reconcile_cursor, source.endpoint, result.cursor_after)
    else:
        result.cursor_after = result.cursor_before


def _next_cursor(result: EndpointResult, newest: tuple[datetime, str] | None) -> str | None:
    """Tradecloud's newest lastUpdatedAt, as received; it never moves the cursor back (a
    --since before the cursor re-reads old changes). A first run whose poll found nothing
    starts the cursor at the --since it sent, so later runs can continue from there."""
    before = changes.parse_instant(result.cursor_before)
    if newest is None:
        return result.cursor_before or result.since
    if before is not None and newest[0] <= before:
        return result.cursor_before
    return newest[1]


async def _process_page(
    store: Store,
    source: PollSource,
    result: EndpointResult,
    objects: Sequence[dict[str, Any]],
    until: datetime | None,
    dry_run: bool,
    route: Callable[[WebhookEvent], tuple[str, ...]],
) -> None:
    ids = [obj["id"] for obj in objects if _object_id(obj)]
    known = await asyncio.to_thread(
        store.known_objects, source.change_kinds, source.notification_kind, ids
    )
    pending: list[tuple[NewEvent, str]] = []  # with the lastUpdatedAt as Tradecloud wrote it
    for obj in objects:
        result.polled += 1
        object_id = _object_id(obj)
        last_updated_at = _last_updated_at(source, obj)
        key = change_key(source.resource, object_id, last_updated_at) if object_id else None
        if object_id is None or last_updated_at is None or key is None:
            result.unusable += 1
            continue
        polled_at = changes.parse_instant(last_updated_at)
        if until is not None and polled_at is not None and polled_at > until:
            result.after_until += 1
            continue
        state = _known_state(source, known.get(object_id) or KnownObject(object_id))
        if _is_known(source, obj, polled_at, state):
            result.known += 1
            continue
        event = _recovered_event(source, obj, object_id, last_updated_at, key, state, route)
        pending.append((event, last_updated_at))
    if not pending:
        return
    if dry_run:
        result.recovered.extend(_change(event, stamp, None) for event, stamp in pending)
        return
    stored = await asyncio.to_thread(store.append_recovered, [event for event, _ in pending])
    for (event, stamp), outcome in zip(pending, stored, strict=True):
        if outcome.duplicate:  # a webhook for this change was stored since we looked
            result.known += 1
        else:
            result.recovered.append(_change(event, stamp, outcome.id))


def _change(event: NewEvent, last_updated_at: str, event_id: int | None) -> RecoveredChange:
    assert event.resource_id is not None and event.message_id is not None
    return RecoveredChange(
        event.kind,
        event.resource_id,
        event.number,
        last_updated_at,
        event.changed_lines,
        event.message_id,
        event_id,
    )


# ------------------------------------------------------------------------------------------
# Comparing


@dataclass(frozen=True)
class _Known:
    """The newest state of one object the store holds, from any of its events."""

    instant: datetime | None = None
    version: int | None = None
    full_object: dict[str, Any] | None = None  # a whole object as new as ``instant``


def _known_state(source: PollSource, known: KnownObject) -> _Known:
    candidates: list[tuple[datetime | None, int | None, dict[str, Any] | None]] = []
    if known.change_key is not None:
        payload = _payload(known.change_body)
        instant = changes.parse_instant(known.change_key.rsplit("@", 1)[1])
        # A recovered event holds the whole polled object; a webhook only the affected lines.
        whole = payload if (known.change_kind or "").endswith("_recovered") else None
        candidates.append((instant, _version(payload), whole))
    if known.legacy_body is not None:  # stored before change keys existed
        payload = _payload(known.legacy_body)
        instant = _object_instant(source, payload) if payload else None
        candidates.append((instant, _version(payload), None))
    if known.fetched is not None:
        fetched = _json(known.fetched)
        if fetched is not None:
            candidates.append((_object_instant(source, fetched), _version(fetched), fetched))
    instants = [instant for instant, _, _ in candidates if instant is not None]
    versions = [version for _, version, _ in candidates if version is not None]
    newest = max(instants, default=None)
    wholes = [whole for instant, _, whole in candidates if whole is not None and instant == newest]
    return _Known(newest, max(versions, default=None), wholes[0] if wholes else None)


def _is_known(
    source: PollSource, obj: dict[str, Any], polled_at: datetime | None, known: _Known
) -> bool:
    """Known when the store holds a change as new; the order ``version`` decides only when a
    timestamp is missing (it does not grow with every change, lastUpdatedAt does)."""
    if polled_at is not None and known.instant is not None:
        return known.instant >= polled_at
    version = _version(obj)
    if source.resource == "order" and version is not None and known.version is not None:
        return known.version >= version
    return False


def _changed_lines(source: PollSource, obj: dict[str, Any], known: _Known) -> tuple[str, ...]:
    """Lines changed since the newest state we have: against that whole object when we have
    one, else updated after its instant; every line when we know nothing of the object."""
    if source.resource == "order":
        if known.full_object is None and known.instant is None:
            return tuple(changes.order_line_key(line) for line in _lines(obj))
        result = changes.order_line_changes(obj, since=known.instant, previous=known.full_object)
        picked = {id(line) for line in result.changed + result.unknown}
        return tuple(changes.order_line_key(line) for line in _lines(obj) if id(line) in picked)
    if known.instant is None:
        return tuple(item.key for item in changes.shipment_lines(obj))
    shipment = changes.shipment_line_changes(obj, since=known.instant)
    picked = {id(item.line) for item in shipment.changed + shipment.unknown}
    return tuple(item.key for item in changes.shipment_lines(obj) if id(item.line) in picked)


def _recovered_event(
    source: PollSource,
    obj: dict[str, Any],
    object_id: str,
    last_updated_at: str,
    key: str,
    known: _Known,
    route: Callable[[WebhookEvent], tuple[str, ...]],
) -> NewEvent:
    message_id = str(uuid.uuid5(MESSAGE_ID_NAMESPACE, key))
    number = _number(source, obj)
    lines = _changed_lines(source, obj, known)
    # Shaped like the webhook, so a consumer of webhook payloads reads it the same way; the
    # object is whole (every line), and changed_lines says which lines changed.
    body = {
        source.payload_key: obj,
        "meta": {
            "messageId": message_id,
            "createdDateTime": utc_now(),
            "source": {"origin": "tcwebhook reconcile", "endpoint": source.endpoint},
        },
    }
    event = WebhookEvent(
        source.recovered_kind,
        None,
        message_id,
        object_id,
        number,
        source.payload_key,
        None,
        lines,
        (),
        last_updated_at,
    )
    return NewEvent(
        received_at=utc_now(),
        kind=source.recovered_kind.value,
        event_name=None,
        message_id=message_id,
        dedup_key=key,
        resource_id=object_id,
        number=number,
        changed_lines=lines,
        method="POLL",
        path="/" + source.endpoint,
        headers={},
        body=orjson.dumps(body, default=_exact_number),
        tasks=route(event),
        change_key=key,
    )


# ------------------------------------------------------------------------------------------
# Reading objects


def _exact_number(value: Any) -> Any:
    # The client parses numbers as Decimal: write them back digit for digit.
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _json(raw: bytes | None) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _payload(body: bytes | None) -> dict[str, Any] | None:
    """The object inside a stored webhook (or recovered) body."""
    data = _json(body)
    if data is None:
        return None
    for key in PAYLOAD_KEYS:
        if isinstance(data.get(key), dict):
            payload: dict[str, Any] = data[key]
            return payload
    return None


def _object_id(obj: dict[str, Any]) -> str | None:
    value = obj.get("id", obj.get("orderId"))
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None


def _last_updated_at(source: PollSource, obj: dict[str, Any]) -> str | None:
    """The object's own timestamp as sent: the order header, the shipment's meta."""
    places: list[Any] = [obj, obj.get("meta")]
    if source.resource == "shipment":
        places.reverse()
    for place in places:
        if isinstance(place, dict):
            for name in ("lastUpdatedAt", "lastChangedAt"):
                value = place.get(name)
                if isinstance(value, str) and changes.parse_instant(value) is not None:
                    return value
    return None


def _object_instant(source: PollSource, obj: dict[str, Any]) -> datetime | None:
    if source.resource == "order":
        return changes.order_reference(obj)
    return changes.shipment_reference(obj)


def _version(obj: dict[str, Any] | None) -> int | None:
    value = obj.get("version") if obj else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number(source: PollSource, obj: dict[str, Any]) -> str | None:
    part, name = (
        ("buyerOrder", "purchaseOrderNumber")
        if source.resource == "order"
        else ("supplierShipment", "shipmentNumber")
    )
    holder = obj.get(part)
    value = holder.get(name) if isinstance(holder, dict) else None
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None


def _lines(obj: dict[str, Any]) -> list[dict[str, Any]]:
    lines = obj.get("lines")
    return [line for line in lines if isinstance(line, dict)] if isinstance(lines, list) else []


# ------------------------------------------------------------------------------------------
# The timer in serve


ReportListener = Callable[[ReconcileReport], None]


def lease_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def run_leased(
    settings: Settings, store: Store, interval: float, holder: str | None = None
) -> ReconcileReport | None:
    """One run if this process gets the lease (None when another instance has it).

    After the run the lease is kept until most of ``interval`` has passed, so that instances
    sharing the store run once per interval between them, not once each.
    """
    holder = holder or lease_holder()
    started = time.time()
    expires = started + max(interval, MIN_LEASE_SECONDS)
    if not await asyncio.to_thread(store.acquire_lease, LEASE_NAME, holder, expires):
        return None
    try:
        try:
            return await reconcile(settings, store, trigger="serve")
        except TcwebhookError as exc:  # no cursor yet, store trouble: a failed run, not a crash
            report = ReconcileReport(utc_now(), False, "serve", error=str(exc))
            report.finished_at = report.started_at
            await asyncio.to_thread(store.record_reconcile_run, report.to_json(False))
            return report
    finally:
        keep_until = started + interval * 0.9
        await asyncio.to_thread(store.release_lease, LEASE_NAME, holder, keep_until)


async def reconcile_timer(
    settings: Settings,
    store: Store,
    stopping: asyncio.Event,
    listener: ReportListener | None = None,
    on_stored: Callable[[], None] | None = None,
    interval: float | None = None,
) -> None:
    """Reconcile now and then every ``interval`` seconds (``reconcile.every``) until stopped."""
    interval = interval or settings.reconcile.interval_seconds
    if interval is None:
        return
    while not stopping.is_set():
        try:
            report = await run_leased(settings, store, interval)
        except Exception:  # a bug must not stop serve; the next interval tries again
            log.exception("reconcile failed unexpectedly")
            report = None
        if report is not None:
            if report.recovered and on_stored is not None:
                on_stored()
            if listener is not None:
                listener(report)
        try:
            await asyncio.wait_for(stopping.wait(), timeout=interval)
        except TimeoutError:
            continue
