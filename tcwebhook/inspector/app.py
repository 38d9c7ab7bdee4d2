"""The inspector as an aiohttp application, built from settings and a store.

It reads only through the store's methods (in a thread, or for the pages that may be large in a
worker process: the receiver may share this event loop) and acts only through the library
functions the CLI calls.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from tcwebhook.config import Settings
from tcwebhook.inspector import actions, live, offload, security, views
from tcwebhook.inspector import requests as requests_views
from tcwebhook.inspector.keys import PAGES, SECURITY, SETTINGS, STORE, WATCHER
from tcwebhook.inspector.security import Handler
from tcwebhook.server.errorlog import FailureLog
from tcwebhook.store import Store

STATIC = Path(__file__).parent / "static"
# Forms only: an action's fields are a token, a URL, a sample name.
MAX_REQUEST_BYTES = 64 * 1024


def create_app(
    settings: Settings, store: Store, failures: FailureLog | None = None
) -> web.Application:
    """The inspector for ``store`` (opened from ``settings.store_url``); ``settings`` as the
    receiver serves (for "this serve"); ``failures``: where failed pages are reported."""
    guard = security.PageSecurity(settings.inspector, failures)
    app = web.Application(
        client_max_size=MAX_REQUEST_BYTES,
        middlewares=[security.middleware(guard), _warm_pages],
    )
    app[SETTINGS] = settings
    app[STORE] = store
    app[SECURITY] = guard
    app[PAGES] = offload.PagePool(settings.store_url)
    app.cleanup_ctx.append(live.cleanup_context(WATCHER, store))
    app.on_shutdown.append(live.end_streams(WATCHER))
    router = app.router
    router.add_get("/", views.events_page, name="events")
    router.add_get("/events/{event_id:\\d+}", views.event_page, name="event")
    router.add_get("/events/{event_id:\\d+}/raw", views.raw_body)
    router.add_get("/events/{event_id:\\d+}/fetched", views.raw_fetched)
    router.add_get("/timeline/{resource_id:.+}", views.timeline_page, name="timeline")
    router.add_get("/status", views.status_page, name="status")
    router.add_get("/requests", requests_views.requests_page, name="requests")
    router.add_get("/live/requests", requests_views.live_requests)
    router.add_get("/live/events", views.live_events)
    router.add_get("/live/status", views.live_status)
    router.add_post("/events/{event_id:\\d+}/retry", actions.retry)
    router.add_post("/status/retry-dead", actions.retry_dead)
    router.add_post("/events/{event_id:\\d+}/replay", actions.replay_event)
    router.add_post("/samples/send", actions.send_sample)
    router.add_post("/documents/{object_id}/download", actions.download)
    router.add_get("/favicon.ico", favicon)
    router.add_static("/static", STATIC)
    return app


async def favicon(request: web.Request) -> web.FileResponse:
    # Browsers ask for it on every first visit: a 404 there only adds noise to the console.
    return web.FileResponse(STATIC / "favicon.ico", headers={"Cache-Control": "max-age=86400"})


@web.middleware
async def _warm_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    # The page worker is a second interpreter (about 60 MB with multiprocessing's tracker):
    # started when someone first opens the inspector, not with serve, so a receiver nobody
    # inspects does not carry it. The list a person lands on gives it time to start.
    request.app[PAGES].warm()
    return await handler(request)
