"""Paging through one poll endpoint, storing each page's recovered events, and its cursor.

Tradecloud answers a poll oldest change first (docs/reconcile.md#paging). Paging by ``offset``
under one ``lastUpdatedAfter`` skips an object whenever an earlier one changes meanwhile (it
moves to the end and everything after it slides back by one). So each next page asks again,
from offset 0, for what changed after the page just read, stepping back over the last instant
of that page, which may continue on the next: the pages overlap a little, and a change read
twice is stored once. Offsets are used only where that cannot step forward (a page that all
shares one instant, or an answer out of order); there a repeated object ends the run
unfinished, because a slide may have hidden another.

The cursor moves only to an instant up to which every object was read and stored, after the
whole endpoint was read: never past the newest usable object read, never from the clock.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import orjson

from tcwebhook import changes
from tcwebhook.errors import ApiError
from tcwebhook.reconcile.recovered import (
    PolledObject,
    Router,
    is_known,
    known_state,
    read_polled,
    recovered_event,
)
from tcwebhook.reconcile.report import EndpointResult, ProgressCallback, RecoveredChange
from tcwebhook.reconcile.sources import PollSource
from tcwebhook.store import KnownObject, NewEvent, Store, utc_now
from tcwebhook.tradecloud import POLL_LIMIT, AnswerTooLarge

if TYPE_CHECKING:
    from tcwebhook.tradecloud import PollPage, TradecloudClient

MAX_PAGES = 10_000  # a bound on one endpoint's paging (a million objects), whatever total says


def format_instant(instant: datetime) -> str:
    """``2025-04-23T10:01:53.812Z``: how Tradecloud writes instants."""
    return f"{instant:%Y-%m-%dT%H:%M:%S}.{instant.microsecond // 1000:03d}Z"


@dataclass
class _Query:
    """One ``lastUpdatedAfter`` and the pages read under it."""

    after: str
    after_instant: datetime | None
    offset: int = 0
    objects: set[str] = field(default_factory=set)  # distinct objects read under it
    last_instant: datetime | None = None  # of the last page, when the pages are in order
    in_order: bool = True


@dataclass
class _Paging:
    """Where one endpoint's paging stands."""

    query: _Query
    seen: dict[str, datetime | None] = field(default_factory=dict)  # object → instant read
    offsets_used: bool = False  # a query went past offset 0: objects may slide under it
    newest: PolledObject | None = None  # the newest usable object read
    read: int = 0  # distinct changes read, for the progress bar
    limit: int = POLL_LIMIT  # objects per page: the API's most, halved while answers are too big


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
    """Read every page of one endpoint, storing each page's recovered events as it comes;
    then move its cursor (an ApiError, and the cursor kept, when the answers cannot be
    trusted to have shown every object)."""
    paging = _Paging(_Query(result.since, changes.parse_instant(result.since)))
    while True:
        if result.pages >= MAX_PAGES:
            raise _unfinished(source, f"did not end within {MAX_PAGES} pages")
        query = paging.query
        page = await _read_page(api, source, paging)
        result.pages += 1
        if result.total is None:
            result.total = page.total
        polled = [read_polled(source, obj) for obj in page.data]
        _check_page(source, paging, polled)
        fresh = _take_in(paging, polled)
        await _process_page(store, source, result, fresh, until, dry_run, route)
        if progress is not None:
            progress(source.endpoint, paging.read, max(result.total, paging.read))
        if not page.data or query.offset + len(page.data) >= page.total:
            if len(query.objects) < page.total:
                raise _unfinished(
                    source,
                    f"announced {page.total} objects after {query.after} but sent "
                    f"{len(query.objects)} different ones",
                )
            break
        _next_query(paging, polled, len(page.data))
    result.complete = True
    result.cursor_after = _next_cursor(result, paging.newest, page)
    # The cursor moves only after a complete, stored run over an open-ended window: with
    # --until the objects after it were left out, and a dry run stored nothing.
    if result.cursor_after != result.cursor_before and until is None and not dry_run:
        assert result.cursor_after is not None
        await asyncio.to_thread(store.set_reconcile_cursor, source.endpoint, result.cursor_after)
    else:
        result.cursor_after = result.cursor_before


async def _read_page(api: TradecloudClient, source: PollSource, paging: _Paging) -> PollPage:
    """One page. An answer over the size limit is asked again for half as many objects (big
    orders make big pages), down to one; a single object over the limit ends the run."""
    query = paging.query
    while True:
        try:
            return await api.poll(source.endpoint, query.after, query.offset, paging.limit)
        except AnswerTooLarge:
            if paging.limit == 1:
                raise
            paging.limit //= 2


def _unfinished(source: PollSource, what: str) -> ApiError:
    return ApiError(
        f"Tradecloud's {source.endpoint} poll {what}; stopped without moving the cursor, "
        "so the next run reads it again; run reconcile again later"
    )


def _check_page(source: PollSource, paging: _Paging, polled: Sequence[PolledObject]) -> None:
    """An answer that cannot be the next objects in order ends the run unfinished."""
    query = paging.query
    if len(polled) > paging.limit:
        raise _unfinished(source, f"sent {len(polled)} objects for a limit of {paging.limit}")
    after = query.after_instant
    if after is not None and any(p.instant is not None and p.instant < after for p in polled):
        raise _unfinished(source, f"sent objects older than the lastUpdatedAfter {query.after}")
    identities = [_identity(p) for p in polled]
    if len(set(identities)) < len(identities):
        raise _unfinished(source, "sent one object twice in one page")
    if paging.offsets_used or query.offset:
        for p, identity in zip(polled, identities, strict=True):
            if identity in paging.seen and paging.seen[identity] != p.instant:
                raise _unfinished(
                    source,
                    "sent an object that changed while pages were read by offset, which may "
                    "have hidden another",
                )


def _identity(polled: PolledObject) -> str:
    """The object id; for an object without one, a digest of the object itself."""
    if polled.object_id is not None:
        return polled.object_id
    return "#" + hashlib.sha256(orjson.dumps(polled.data, default=str)).hexdigest()


def _take_in(paging: _Paging, polled: Sequence[PolledObject]) -> list[PolledObject]:
    """Records a page; returns the objects not read before in this run (the pages overlap)."""
    fresh = []
    for p in polled:
        identity = _identity(p)
        paging.query.objects.add(identity)
        if identity in paging.seen and paging.seen[identity] == p.instant:
            continue
        paging.seen[identity] = p.instant
        fresh.append(p)
        newest = paging.newest.instant if paging.newest else None
        if p.usable and p.instant is not None and (newest is None or p.instant > newest):
            paging.newest = p
    paging.read += len(fresh)
    return fresh


def _next_query(paging: _Paging, polled: Sequence[PolledObject], count: int) -> None:
    """Ask again after the page's last instant but one, when the answers come in order;
    else the next offset under the same lastUpdatedAfter."""
    query = paging.query
    dated = [(p.instant, p) for p in polled if p.instant is not None]
    instants = [instant for instant, _ in dated]
    follows = not instants or query.last_instant is None or instants[0] >= query.last_instant
    query.in_order = query.in_order and follows and instants == sorted(instants)
    if instants:
        query.last_instant = instants[-1]
    # The last instant may go on in the next page: ask again from the one before it.
    before_last = [p for instant, p in dated if instant < instants[-1]] if instants else []
    boundary = before_last[-1] if before_last and query.in_order else None
    after = query.after_instant
    if boundary and boundary.instant and (after is None or boundary.instant > after):
        paging.query = _Query(boundary.last_updated_at or "", boundary.instant)
        return
    query.offset += count
    paging.offsets_used = True


def _next_cursor(
    result: EndpointResult, newest: PolledObject | None, last_page: PollPage
) -> str | None:
    """As received, never from the clock, never back (a --since before the cursor re-reads
    old changes), never past the newest usable object read. Tradecloud's own lastUpdatedAt
    is taken when it is no later than that object; a first run that read nothing starts the
    cursor at the --since it sent, so later runs continue from there."""
    if newest is None or newest.instant is None or newest.last_updated_at is None:
        return result.cursor_before or result.since
    cursor, instant = newest.last_updated_at, newest.instant
    offered = changes.parse_instant(last_page.last_updated_at)
    since = changes.parse_instant(result.since)
    if offered is not None and offered <= instant and (since is None or offered >= since):
        cursor, instant = last_page.last_updated_at or cursor, offered
    before = changes.parse_instant(result.cursor_before)
    if before is not None and instant <= before:
        return result.cursor_before
    return cursor


async def _process_page(
    store: Store,
    source: PollSource,
    result: EndpointResult,
    polled: Sequence[PolledObject],
    until: datetime | None,
    dry_run: bool,
    route: Router,
) -> None:
    if not polled:
        return
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
