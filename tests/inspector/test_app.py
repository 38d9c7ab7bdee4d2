"""The inspector in-process: pages from the store, escaping, security headers, refusals."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from tcwebhook.config import InspectorSettings, Settings, TlsFiles
from tcwebhook.errors import ConfigError
from tcwebhook.inspector.run import check
from tcwebhook.store import EventQuery, Outcome, Store
from tests.helpers.inspector import SAMPLES, TOKEN, csrf_of, sample, store_body

SCRIPT = '<script>document.title="pwned"</script><img src=x onerror="alert(1)">'


@pytest.mark.usefixtures("store_backend")  # the inspector reads through the Store interface
async def test_pages_carry_a_strict_policy_and_no_secret(
    inspector: TestClient, store: Store
) -> None:
    event_id = store_body(store, sample("order-event.json"))
    for path in ("/", f"/events/{event_id}", "/status", "/timeline/" + "x" * 3):
        response = await inspector.get(path)
        html = await response.text()
        assert response.status == (404 if "/timeline/" in path else 200), (path, html[:500])
        assert TOKEN not in html
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "<script>" not in html.replace('<script src="/static/inspector.js" defer>', "")


async def test_payload_markup_is_shown_as_text(inspector: TestClient, store: Store) -> None:
    body = sample("order-event.json")
    body["orderEvent"]["lines"][0]["buyerLine"]["description"] = SCRIPT
    body["orderEvent"]["buyerOrder"]["purchaseOrderNumber"] = SCRIPT
    event_id = store_body(store, body, headers={"X-Note": SCRIPT})
    for path in ("/", f"/events/{event_id}"):
        html = await (await inspector.get(path)).text()
        assert SCRIPT not in html
        assert "&lt;script&gt;" in html and "onerror=&#34;" in html


async def test_raw_body_is_a_download_never_rendered(inspector: TestClient, store: Store) -> None:
    raw = (SAMPLES / "order-event.json").read_bytes()
    event_id = store_body(store, raw)
    response = await inspector.get(f"/events/{event_id}/raw")
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert await response.read() == raw


async def test_actions_need_same_origin_and_the_session_token(
    inspector: TestClient, store: Store
) -> None:
    event_id = store_body(store, sample("order-event.json"), tasks=("erp",))
    store.requeue_tasks(event_id)  # attempts 0, pending
    page = await inspector.get(f"/events/{event_id}")
    token = csrf_of(await page.text())
    origin = str(inspector.make_url("")).rstrip("/")
    url = f"/events/{event_id}/retry"
    refused = [
        ({"Origin": "http://evil.example"}, {"csrf_token": token}),
        ({}, {"csrf_token": token}),  # neither Origin nor Referer
        ({"Origin": origin}, {}),
        ({"Origin": origin}, {"csrf_token": "0" * 64}),
    ]
    for headers, form in refused:
        response = await inspector.post(url, data=form, headers=headers, allow_redirects=False)
        assert response.status == 403, (headers, form)
    response = await inspector.post(
        url, data={"csrf_token": token}, headers={"Origin": origin}, allow_redirects=False
    )
    assert response.status == 303
    assert response.headers["Location"] == f"/events/{event_id}?requeued=1"


async def test_another_host_name_is_refused_on_loopback(inspector: TestClient) -> None:
    # A page that rebinds its own name to 127.0.0.1 would send its own Host.
    response = await inspector.get("/", headers={"Host": "attacker.example:4041"})
    assert response.status == 421


def test_only_loopback_without_tls_and_login(tmp_path: Path) -> None:
    check(Settings(inspector=InspectorSettings(listen="[::1]:4041")))
    with pytest.raises(ConfigError, match=r"refusing to serve the inspector on 0\.0\.0\.0:4041"):
        check(Settings(inspector=InspectorSettings(listen="0.0.0.0:4041")))
    secured = InspectorSettings(
        listen="0.0.0.0:4041",
        tls=TlsFiles(tmp_path / "c.pem", tmp_path / "k.pem"),
        username="me",
        password="pw",
    )
    check(Settings(inspector=secured))
    with pytest.raises(ConfigError, match=r"inspector\.listen must be HOST:PORT"):
        InspectorSettings(listen="4041")


@pytest.mark.usefixtures("store_backend")
def test_keyset_pages_filters_and_search(store: Store) -> None:
    ids = [store_body(store, sample(name)) for name in (
        "order-event.json", "shipment-event.json", "order-documents-event.json",
        "single-delivery-order-event.json",
    )]  # fmt: skip
    assert [e.id for e in store.page_events(EventQuery(limit=2))] == ids[:1:-1]
    assert [e.id for e in store.page_events(EventQuery(limit=2, before=ids[2]))] == ids[1::-1]
    assert [e.id for e in store.page_events(EventQuery(limit=2, after=ids[0]))] == ids[2:0:-1]
    assert [e.kind for e in store.page_events(EventQuery(kind="shipment"))] == ["shipment"]
    by_name = store.page_events(EventQuery(event_name="OrderDocuments*"))
    assert [e.id for e in by_name] == [ids[2]]
    assert {e.id for e in store.page_events(EventQuery(search="PO2025"))} >= {ids[0], ids[2]}
    assert [e.id for e in store.page_events(EventQuery(search=f"#{ids[1]}"))] == [ids[1]]
    assert store.page_events(EventQuery(search="#99999999999999999999999")) == []
    queued = store_body(store, sample("order-event.json") | {"meta": {"messageId": "q"}}, ("x",))
    assert [e.id for e in store.page_events(EventQuery(task_state="pending"))] == [queued]
    assert [e.id for e in store.page_events(EventQuery(search="q"))] == [queued]
    assert store.latest_event_id() == queued
    resource = store.get_event(queued).resource_id
    assert resource is not None and store.previous_event(resource, queued) is not None
    assert [e.id for e in store.resource_events(resource)][-1] == queued
    tasks = store.event_tasks([queued, ids[0], 99999999])
    assert list(tasks) == [queued] and [t.target for t in tasks[queued]] == ["x"]
    assert store.event_tasks([]) == {}


async def _first_data(
    client: TestClient, path: str, headers: dict[str, str] | None = None, event: str = "message"
) -> str:
    """The first SSE data frame of a live stream with this event type."""
    async with client.get(path, headers=headers) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        data: list[str] = []
        kind = "message"
        async with asyncio.timeout(5):
            async for raw in response.content:
                line = raw.decode().rstrip("\n")
                if line.startswith("data: "):
                    data.append(line[6:])
                elif line.startswith("event: "):
                    kind = line[7:]
                elif not line:
                    if data and kind == event:
                        return "\n".join(data)
                    data, kind = [], "message"
    raise AssertionError(f"no {event} frame")


async def test_live_streams_send_new_rows_and_the_status(
    inspector: TestClient, store: Store
) -> None:
    first = store_body(store, sample("order-event.json"))
    waiting = asyncio.ensure_future(_first_data(inspector, f"/live/events?after={first}"))
    await asyncio.sleep(0.3)
    second = store_body(store, sample("shipment-event.json"))
    rows = await waiting
    assert f'data-id="{second}"' in rows and f'data-id="{first}"' not in rows
    resumed = await _first_data(inspector, "/live/events", {"Last-Event-ID": str(first)})
    assert f'data-id="{second}"' in resumed
    filtered = await asyncio.wait_for(_first_data(inspector, "/live/events?kind=order&after=0"), 5)
    assert f'data-id="{first}"' in filtered and f'data-id="{second}"' not in filtered
    status = await _first_data(inspector, "/live/status")
    assert "Events stored" in status and "shipment" in status


async def test_live_list_sends_the_delivery_state_of_its_rows(
    inspector: TestClient, store: Store
) -> None:
    event_id = store_body(store, sample("order-event.json"), ("erp<b>",))
    states = await _first_data(inspector, f"/live/events?after={event_id}", event="states")
    assert f'<tr data-id="{event_id}"><td class="deliveries">' in states
    assert "erp&lt;b&gt;: pending" in states and "<b>" not in states
    [task] = store.get_event(event_id).tasks
    store.finish_tasks([Outcome(task, "done")])
    states = await _first_data(inspector, f"/live/events?after={event_id}", event="states")
    assert "erp&lt;b&gt;: done" in states
