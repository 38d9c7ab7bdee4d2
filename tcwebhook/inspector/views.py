"""The inspector's pages: the event list, one event, one order or shipment, the status."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from aiohttp import web

from tcwebhook import samples
from tcwebhook.delivery.status import MAX_FAILING_AGE, MAX_PENDING_AGE, outbox_status
from tcwebhook.errors import NotFound
from tcwebhook.events import KNOWN_EVENT_NAMES, EventKind
from tcwebhook.inspector import listing, live, pages
from tcwebhook.inspector.keys import PAGES, SECURITY, SETTINGS, STORE, WATCHER
from tcwebhook.inspector.render import render, render_macro
from tcwebhook.inspector.security import CSRF_FIELD, session_id
from tcwebhook.store import EventQuery, StoredEvent, TaskRecord

PAGE_SIZE = 50
# The live list keeps the delivery state of this many of its newest rows up to date.
LIVE_STATES = 100
TASK_STATES = ("pending", "running", "failed", "dead", "done")
# Same default as 'tcwebhook status --max-pending-age'.


def common(request: web.Request) -> dict[str, Any]:
    """What every full page shows: the navigation and this session's action token."""
    api = request.app[SETTINGS].tradecloud
    return {
        "csrf": request.app[SECURITY].csrf_token(session_id(request)),
        "csrf_field": CSRF_FIELD,
        "path": request.path,
        "can_download": bool(api.username and api.password),
    }


def page(request: web.Request, template: str, **context: Any) -> web.Response:
    """A full page: the template with the navigation and this session's action token."""
    return html_response(render(template, **common(request), **context))


def html_response(html: str) -> web.Response:
    return web.Response(text=html, content_type="text/html", charset="utf-8")


def event_query(request: web.Request, limit: int | None = None) -> EventQuery:
    """The list's filters from the query string (unknown values simply match nothing)."""
    query = request.query

    def text(name: str) -> str | None:
        value = query.get(name, "").strip()
        return value[:200] or None

    def number(name: str) -> int | None:
        value = query.get(name, "")
        return int(value) if value.isdigit() and len(value) < 19 else None

    return EventQuery(
        kind=text("kind"),
        event_name=text("event"),
        task_state=text("state"),
        search=text("q"),
        before=number("before"),
        after=number("after"),
        limit=limit or PAGE_SIZE,
    )


async def events_page(request: web.Request) -> web.Response:
    query = event_query(request)
    store = request.app[STORE]
    sink = request.query.get("sink", "").strip()[:200]
    filters = {
        name: request.query[name]
        for name in ("kind", "event", "state", "sink", "q")
        if request.query.get(name)
    }
    first_page = query.before is None and query.after is None
    older = newer = None
    if sink:
        # Filtered here, not by the store (listing): read backwards only, and not live.
        found, latest, sinks = await asyncio.gather(
            asyncio.to_thread(listing.sink_page, store, query, sink),
            asyncio.to_thread(store.latest_event_id),
            asyncio.to_thread(store.targets),
        )
        events = found.events
        if found.older_than is not None:
            older = {**filters, "before": str(found.older_than)}
        live_after = None
    else:
        events, latest, sinks = await asyncio.gather(
            asyncio.to_thread(store.page_events, query),
            asyncio.to_thread(store.latest_event_id),
            asyncio.to_thread(store.targets),
        )
        if events and len(events) >= query.limit:
            older = {**filters, "before": str(events[-1].id)}
        if events and not first_page:
            newer = {**filters, "after": str(events[0].id)}
        live_after = latest if first_page else None
    return page(
        request,
        "events.html",
        events=events,
        filters=filters,
        kinds=[kind.value for kind in EventKind],
        event_names=sorted(KNOWN_EVENT_NAMES - {None}),
        states=TASK_STATES,
        sinks=sinks,
        live_after=live_after,
        older=older,
        newer=newer,
        samples=[sample.name for sample in samples.catalog() if sample.is_webhook],
    )


async def event_page(request: web.Request) -> web.Response:
    # Built in a worker process: an event may be megabytes of JSON (see offload).
    event_id = _event_id(request)
    requeued = request.query.get("requeued", "")
    notice = None
    if requeued.isdigit():
        notice = f"{requeued} delivery(ies) re-queued; a running serve or deliver picks them up"
    context = pages.EventPage(
        common(request),
        request.app[SETTINGS],
        f"{request.scheme}://{request.host}",
        notice,
    )
    try:
        html = await request.app[PAGES].run(pages.event_page, event_id, context)
    except NotFound:
        raise web.HTTPNotFound(text=f"no event with id {event_id}") from None
    return html_response(html)


async def raw_body(request: web.Request) -> web.Response:
    event = await _event(request)
    return download_response(event.body, f"event-{event.id}.json")


async def raw_fetched(request: web.Request) -> web.Response:
    event = await _event(request)
    if event.fetched is None:
        raise web.HTTPNotFound(text=f"event #{event.id} has no fetched object")
    return download_response(event.fetched, f"event-{event.id}-fetched.json")


async def timeline_page(request: web.Request) -> web.Response:
    resource_id = request.match_info["resource_id"]
    html = await request.app[PAGES].run(pages.timeline_page, resource_id, common(request))
    if html is None:
        raise web.HTTPNotFound(text="no stored event for this order or shipment")
    return html_response(html)


async def status_page(request: web.Request) -> web.Response:
    report = await _status(request)
    requeued = request.query.get("requeued", "")
    notice = None
    if requeued.isdigit() and len(requeued) < 19:
        notice = (
            f"{requeued} dead delivery(ies) re-queued; a running serve or deliver picks them up"
        )
    return page(request, "status.html", report=report, states=TASK_STATES, notice=notice)


async def live_events(request: web.Request) -> web.StreamResponse:
    """New rows for the list, under the list's filters, from the id after which to start."""
    watcher = request.app[WATCHER]
    store = request.app[STORE]
    filters = event_query(request, limit=PAGE_SIZE)
    resume = request.headers.get("Last-Event-ID", "")
    start = int(resume) if resume.isdigit() and len(resume) < 19 else (filters.after or 0)

    # The rows on the page: the page itself (up to the id it was rendered at), then each row
    # sent live; their delivery state as last sent (None: not yet, so sent once on the first
    # refresh, in case it changed between the page and this stream).
    page_query = EventQuery(
        filters.kind, filters.event_name, filters.task_state, filters.search, before=start + 1,
        limit=PAGE_SIZE,
    )  # fmt: skip
    shown: dict[int, tuple[tuple[str, str], ...] | None] = {
        event.id: None for event in await asyncio.to_thread(store.page_events, page_query)
    }

    async def next_rows(after: int) -> tuple[int, str | None]:
        seen = watcher.latest
        query = EventQuery(
            filters.kind, filters.event_name, filters.task_state, filters.search, after=after,
            limit=PAGE_SIZE,
        )  # fmt: skip
        events = await asyncio.to_thread(store.page_events, query)
        if not events:
            return max(after, seen), None
        for event in reversed(events):
            shown[event.id] = _states(event.tasks)
        _keep_newest(shown)
        rows = "".join(render_macro("rows.html", "row", event) for event in events)
        return events[0].id, rows

    async def refresh() -> str | None:
        tasks = await asyncio.to_thread(store.event_tasks, list(shown))
        changed = []
        for event_id, before in shown.items():
            now = tasks.get(event_id, [])
            if _states(now) != before:
                shown[event_id] = _states(now)
                changed.append(render_macro("rows.html", "states_row", event_id, now))
        return "".join(changed) or None

    return await live.stream(request, watcher, next_rows, start, refresh=refresh)


def _states(tasks: Sequence[TaskRecord]) -> tuple[tuple[str, str], ...]:
    return tuple((task.target, task.state) for task in tasks)


def _keep_newest(shown: dict[int, Any]) -> None:
    """Follow only the newest ``LIVE_STATES`` rows: bounded work per refresh."""
    for event_id in sorted(shown)[: max(0, len(shown) - LIVE_STATES)]:
        del shown[event_id]


async def live_status(request: web.Request) -> web.StreamResponse:
    shown: list[str] = []

    async def next_status(position: int) -> tuple[int, str | None]:
        html = render_macro("summary.html", "summary", await _status(request), TASK_STATES)
        if shown and shown[-1] == html:
            return position, None
        shown[:] = [html]
        return position, html

    return await live.stream(
        request, request.app[WATCHER], next_status, 0, interval=live.STATUS_SECONDS
    )


async def _status(request: web.Request) -> dict[str, Any]:
    # The same report as 'tcwebhook status', from the same function.
    return await asyncio.to_thread(
        outbox_status, request.app[STORE], MAX_PENDING_AGE, MAX_FAILING_AGE
    )


def _event_id(request: web.Request) -> int:
    event_id = request.match_info["event_id"]
    if len(event_id) > 18:
        raise web.HTTPNotFound(text="no such event")
    return int(event_id)


async def _event(request: web.Request) -> StoredEvent:
    event_id = _event_id(request)
    try:
        return await asyncio.to_thread(request.app[STORE].get_event, event_id)
    except NotFound:
        raise web.HTTPNotFound(text=f"no event with id {event_id}") from None


def download_response(data: bytes, filename: str) -> web.Response:
    """Bytes the browser saves and never renders: a payload or a document may hold HTML."""
    return web.Response(
        body=data,
        content_type="application/octet-stream",
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"},
    )
