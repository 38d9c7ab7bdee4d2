"""The inspector's actions: each calls the library function its CLI command calls.

Retry → ``store.requeue_tasks`` (``tcwebhook events retry``); retry dead →
``requeue_deliveries`` (``tcwebhook events retry --dead``); replay and send a sample →
``replay.load_sources`` / ``resolve_target`` / ``replay`` (``tcwebhook events replay``,
``tcwebhook replay``). The security middleware has checked Origin and the session token.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import orjson
from aiohttp import web

from tcwebhook.delivery.requeue import requeue_deliveries
from tcwebhook.errors import NotFound, TcwebhookError, UsageError
from tcwebhook.fetch import download_document
from tcwebhook.inspector.keys import SETTINGS, STORE
from tcwebhook.inspector.views import download_response, page
from tcwebhook.replay import (
    STORED_PREFIX,
    ReplayOptions,
    SendResult,
    load_sources,
    replay,
    resolve_target,
)

# An action answers while the browser waits: never the CLI's 30 s default.
SEND_TIMEOUT = 10.0


async def retry(request: web.Request) -> web.StreamResponse:
    event_id = int(request.match_info["event_id"])
    form = await request.post()
    sink = form.get("sink")
    store = request.app[STORE]
    try:
        await asyncio.to_thread(store.get_event, event_id)
    except NotFound:
        raise web.HTTPNotFound(text=f"no event with id {event_id}") from None
    count = await asyncio.to_thread(
        store.requeue_tasks, event_id, sink if isinstance(sink, str) and sink else None
    )
    raise web.HTTPSeeOther(f"/events/{event_id}?requeued={count}")


async def retry_dead(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    sink = form.get("sink")
    store = request.app[STORE]
    try:
        count = await asyncio.to_thread(
            requeue_deliveries,
            store,
            None,
            sink if isinstance(sink, str) and sink else None,
            dead_only=True,
        )
    except UsageError as exc:  # a sink with no deliveries (the page was older than the store)
        raise web.HTTPBadRequest(text=str(exc)) from None
    raise web.HTTPSeeOther(f"/status?requeued={count}")


async def replay_event(request: web.Request) -> web.Response:
    event_id = int(request.match_info["event_id"])
    form = await request.post()
    url = form.get("url")
    return await _send(
        request,
        f"{STORED_PREFIX}{event_id}",
        url if isinstance(url, str) and url else None,
        fresh_id=form.get("fresh_id") == "on",
    )


async def send_sample(request: web.Request) -> web.Response:
    form = await request.post()
    name = form.get("sample")
    if not isinstance(name, str) or not name:
        raise web.HTTPBadRequest(text="choose a sample to send")
    return await _send(request, name, None, fresh_id=True)


async def download(request: web.Request) -> web.Response:
    """A document from the Tradecloud API (``tcwebhook fetch document``), as a download."""
    object_id = request.match_info["object_id"]
    try:
        with tempfile.TemporaryDirectory(prefix="tcwebhook-document-") as directory:
            path = await download_document(request.app[SETTINGS], object_id, Path(directory))
            data = await asyncio.to_thread(path.read_bytes)
    except TcwebhookError as exc:
        return page(request, "result.html", spec=f"document {object_id}", result=None,
                    error=str(exc), stored_id=None)  # fmt: skip
    return download_response(data, path.name)


async def _send(request: web.Request, spec: str, url: str | None, fresh_id: bool) -> web.Response:
    settings = request.app[SETTINGS]
    result: SendResult | None = None
    error = None
    try:
        sources = await asyncio.to_thread(load_sources, [spec], None, settings.store_url)
        target = await asyncio.to_thread(resolve_target, settings, url=url.strip() if url else None)
        options = ReplayOptions(fresh_ids=fresh_id, timeout=SEND_TIMEOUT, keep_response=True)
        report = await replay(sources, target, options)
        result = report.results[0]
    except TcwebhookError as exc:
        error = str(exc)
    return page(
        request,
        "result.html",
        spec=spec,
        result=result,
        error=error,
        stored_id=_stored_id(result),
    )


def _stored_id(result: SendResult | None) -> int | None:
    """The event id when the answer came from a tcwebhook receiver (``{"id": N}``)."""
    if result is None or not result.delivered or not result.response_body:
        return None
    try:
        answer = orjson.loads(result.response_body)
    except orjson.JSONDecodeError:
        return None
    stored = answer.get("id") if isinstance(answer, dict) else None
    return stored if isinstance(stored, int) else None
