"""Paging through one poll endpoint, storing each page's recovered events, and its cursor."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tcwebhook import changes
from tcwebhook.errors import ApiError
from tcwebhook.reconcile.recovered import (
    Router,
    is_known,
    known_state,
    read_polled,
    recovered_event,
)
from tcwebhook.reconcile.report import EndpointResult, ProgressCallback, RecoveredChange
from tcwebhook.reconcile.sources import PollSource
from tcwebhook.store import KnownObject, NewEvent, Store, utc_now

if TYPE_CHECKING:
    from tcwebhook.tradecloud import TradecloudClient

MAX_PAGES = 10_000  # a bound on one endpoint's paging (a million objects), whatever total says


def format_instant(instant: datetime) -> str:
    """``2025-04-23T10:01:53.812Z``: how Tradecloud writes instants."""
    return f"{instant:%Y-%m-%dT%H:%M:%S}.{instant.microsecond // 1000:03d}Z"


async def poll_endpoint(
    api: TradecloudClient,
    store: Store,
    source: PollSource,
    result: EndpointResult,
    until: datetime | None,
    dry_run: bool,
    route: Router,
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
    route: Router,
) -> None:
    polled = [read_polled(source, obj) for obj in objects]
    ids = [item.object_id for item in polled if item.object_id]
    known = await asyncio.to_thread(
        store.known_objects, source.change_kinds, source.notification_kind, ids
    )
    pending: list[tuple[NewEvent, str]] = []  # with the lastUpdatedAt as Tradecloud wrote it
    for item in polled:
        result.polled += 1
        if item.object_id is None or item.last_updated_at is None or item.key is None:
            result.unusable += 1
            continue
        if until is not None and item.instant is not None and item.instant > until:
            result.after_until += 1
            continue
        state = known_state(source, known.get(item.object_id) or KnownObject(item.object_id))
        if is_known(source, item.data, item.instant, state):
            result.known += 1
            continue
        event = recovered_event(source, item, state, route, utc_now())
        pending.append((event, item.last_updated_at))
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
