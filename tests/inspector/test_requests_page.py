"""The inspector's Requests page: refused requests with their fix, stored ones linked to their
event, everything escaped, paged, and the live stream's first message."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient

from tcwebhook.requestlog import Aggregator, ReceiverFacts, explain, refused_record
from tcwebhook.store import Store
from tests.helpers.inspector import TOKEN, sample, store_body

WRONG = "wrong-token-typed-into-the-portal"


def _refuse(store: Store, aggregator: Aggregator, path: str, status: int, cause: str) -> None:
    explained = explain(status, cause, ReceiverFacts(), path=path, auth="present (Bearer)")
    record = refused_record(
        time="2026-12-07T10:00:00.000Z",
        method="POST",
        path=path,
        status=status,
        reason=explained.reason,
        fix=explained.fix,
        duration_ms=1.5,
        client="203.0.113.9",
        authorization=f"Bearer {WRONG}",
        body=b'{"token": "' + WRONG.encode() + b'"}',
        tradecloud=explained.tradecloud,
    )
    store.record_requests(aggregator.offer(record, 0.0))


@pytest.mark.usefixtures("store_backend")
async def test_refused_rows_show_their_fix_and_stored_rows_link_their_event(
    inspector: TestClient, store: Store
) -> None:
    aggregator = Aggregator()
    _refuse(store, aggregator, "/tradecloud/order", 401, "auth.wrong")
    _refuse(store, aggregator, "/<script>alert(1)</script>", 404, "not_found")
    event_id = store_body(store, sample("order-event.json"))

    response = await inspector.get("/requests")
    assert response.status == 200
    html = await response.text()
    assert "Content-Security-Policy" in response.headers
    assert "the Authorization header does not match <code>" not in html  # text, not markup
    assert "does not match auth.token" in html and "re-enter the token" in html
    assert f'href="/events/{event_id}"' in html
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html
    assert WRONG not in html and TOKEN not in html
    assert 'aria-current="page">Requests' in html and 'data-live="/live/requests"' in html

    refused = await (await inspector.get("/requests?refused=1")).text()
    assert f'href="/events/{event_id}"' not in refused and "re-enter the token" in refused

    assert (await inspector.get("/requests?before=nonsense")).status == 400


async def test_older_pages_follow_the_cursor(inspector: TestClient, store: Store) -> None:
    aggregator = Aggregator()
    for index in range(60):
        _refuse(store, aggregator, f"/scan/{index}", 404, "not_found")
    aggregator_writes = aggregator.final()
    store.record_requests(aggregator_writes)
    first = await (await inspector.get("/requests")).text()
    assert first.count("<tr class=") == 50
    href = first.split('<a href="/requests?before=', 1)[1].split('"', 1)[0]
    second = await (await inspector.get("/requests?before=" + href.replace("&amp;", "&"))).text()
    assert second.count("<tr class=") == 10
    assert "data-live" not in second  # an older page stays put


async def test_the_live_stream_sends_the_table(inspector: TestClient, store: Store) -> None:
    _refuse(store, Aggregator(), "/tradecloud/ordr", 404, "not_found")
    async with inspector.get("/live/requests") as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        text = ""
        async with asyncio.timeout(30):
            while "/tradecloud/ordr" not in text:
                text += (await response.content.readany()).decode()
    assert "data: " in text
