"""The inspector's Requests page: the request log, live, with the fix for each refused request.

The page reads a page of the log in a thread (never on the loop the receiver may share); its live
view re-reads the first page every second and sends it when it changed, as the status does.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from tcwebhook.inspector import live
from tcwebhook.inspector.keys import SETTINGS, STORE, WATCHER
from tcwebhook.inspector.render import render_macro
from tcwebhook.inspector.views import page
from tcwebhook.requestlog import NOT_VISIBLE_BEHIND_PROXY, ReceiverFacts, stored_auth
from tcwebhook.store.requests import RequestCursor, RequestPage, RequestQuery

PAGE_SIZE = 50


def _query(request: web.Request) -> RequestQuery:
    facts = ReceiverFacts.from_settings(request.app[SETTINGS])
    before = None
    text = request.query.get("before", "")
    if text:
        try:
            before = RequestCursor.decode(text[:100])
        except ValueError:
            raise web.HTTPBadRequest(text="not a page of the request log") from None
    return RequestQuery(
        limit=PAGE_SIZE,
        refused=request.query.get("refused") == "1",
        before=before,
        path_auth=lambda path: stored_auth(facts, path),
    )


async def _read(request: web.Request, query: RequestQuery) -> RequestPage:
    return await asyncio.to_thread(request.app[STORE].page_requests, query)


async def requests_page(request: web.Request) -> web.Response:
    query = _query(request)
    result = await _read(request, query)
    older = None
    if result.next is not None:
        older = {"before": result.next.encode(), **({"refused": "1"} if query.refused else {})}
    return page(
        request,
        "requests.html",
        records=result.records,
        refused=query.refused,
        live=query.before is None,
        older=older,
        tls_visible=request.app[SETTINGS].server.tls.enabled,
        tls_note=NOT_VISIBLE_BEHIND_PROXY,
    )


async def live_requests(request: web.Request) -> web.StreamResponse:
    query = _query(request)
    shown: list[str] = []

    async def next_table(position: int) -> tuple[int, str | None]:
        result = await _read(request, query)
        html = render_macro("request_rows.html", "table", result.records, query.refused)
        if shown and shown[-1] == html:
            return position, None
        shown[:] = [html]
        return position + 1, html

    return await live.stream(
        request, request.app[WATCHER], next_table, 0, interval=live.STATUS_SECONDS
    )
