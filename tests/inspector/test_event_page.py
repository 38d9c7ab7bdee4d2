"""The event page as a debugging tool (request and answer side by side, a foldable and
searchable body, tXML as text) and the status page whose counters lead to the events behind
them, with "retry dead" guarded like every action."""

from __future__ import annotations

import re

import orjson
import pytest
from aiohttp.test_utils import TestClient

from tcwebhook.events import parse_webhook
from tcwebhook.store import NewEvent, Outcome, Store, utc_now
from tcwebhook.txml import to_xml
from tests.helpers.inspector import TOKEN, csrf_of, sample, store_body, store_recovered
from tests.inspector.test_lines import order


def _ids(html: str) -> list[int]:
    return [int(found) for found in re.findall(r'<tr data-id="(\d+)">', html)]


async def _html(inspector: TestClient, path: str, status: int = 200) -> str:
    response = await inspector.get(path)
    html = await response.text()
    assert response.status == status, (path, html[:300])
    return html


def _dead(store: Store, event_id: int, sink: str = "erp") -> None:
    [task] = [task for task in store.get_event(event_id).tasks if task.target == sink]
    store.finish_tasks([Outcome(task, "dead", error="exit status 1")])


async def test_request_and_answer_side_by_side(inspector: TestClient, store: Store) -> None:
    event_id = store_body(
        store, sample("order-event.json"), headers={"User-Agent": "<b>Tradecloud</b>"}
    )
    html = await _html(inspector, f"/events/{event_id}")
    request = html[html.index('id="request"') : html.index('id="answer"')]
    answer = html[html.index('id="answer"') : html.index("Changed lines")]
    assert "POST /tradecloud/order" in request
    assert '<td class="auth">present (Bearer)' in request
    assert "&lt;b&gt;Tradecloud&lt;/b&gt;" in request and "<b>Tradecloud" not in html
    assert '<dd class="status">200 ' in answer
    expected = orjson.dumps({"status": "stored", "id": event_id}).decode()
    assert expected.replace('"', "&#34;") in answer
    assert "not recorded" in answer  # the duration is not kept for a stored event
    assert TOKEN not in html


async def test_a_recovered_event_had_no_request(inspector: TestClient, store: Store) -> None:
    event_id = store_recovered(store, "order", sample("order-event.json")["orderEvent"])
    html = await _html(inspector, f"/events/{event_id}")
    assert "No request: recovered by reconcile" in html
    assert "present (Bearer)" not in html and '<dd class="status">' not in html


async def test_the_tree_opens_two_levels_and_offers_search_and_copy(
    inspector: TestClient, store: Store
) -> None:
    event_id = store_body(store, sample("order-event.json"))
    html = await _html(inspector, f"/events/{event_id}")
    tree = html[html.index('id="body-tree"') : html.index('id="body-text"')]
    opened = tree.count("<details open>")
    closed = tree.count("<details>")
    # The envelope, its orderEvent and meta are open; the order's parts (lines...) are folded.
    assert opened == 3 and closed > 10, (opened, closed)
    assert 'class="tree-search"' in html and 'class="tree-expand"' in html
    assert 'data-copy="body-text"' in html and '<pre class="json" id="body-text">' in html
    assert '<script src="/static/inspector.js" defer>' in html and "onclick" not in html


async def test_a_txml_body_is_shown_as_xml_text(inspector: TestClient, store: Store) -> None:
    body = sample("order-event.json")
    body["orderEvent"]["buyerOrder"]["description"] = "<script>alert(1)</script>"
    xml = to_xml(body)
    event = parse_webhook(orjson.dumps(body))
    record = NewEvent(
        received_at=utc_now(), kind=event.kind.value, event_name=event.event_name,
        message_id=event.message_id, dedup_key=event.message_id, resource_id=event.resource_id,
        number=event.number, changed_lines=event.changed_lines, method="POST",
        path="/tradecloud/order", headers={"Content-Type": "application/xml"}, body=xml, tasks=(),
    )  # fmt: skip
    event_id = store.append_sync(record).id
    html = await _html(inspector, f"/events/{event_id}")
    assert "tXML, as received" in html
    shown = re.search(r'<pre class="xml" id="body-text">(.*?)</pre>', html, re.S)
    assert shown is not None and "&lt;purchaseOrderNumber&gt;" in shown.group(1)
    assert "<script>alert" not in html and 'id="body-tree"' not in html
    assert 'data-copy="body-text"' in html


@pytest.mark.usefixtures("store_backend")  # the list and retry read through Store
async def test_status_counters_link_to_the_events_behind_them(
    inspector: TestClient, store: Store
) -> None:
    order = store_body(store, sample("order-event.json"), tasks=("erp", "archive"))
    shipment = store_body(store, sample("shipment-event.json"), tasks=("erp",))
    _dead(store, order)
    html = await _html(inspector, "/status")
    assert 'href="/?kind=order"' in html and 'href="/?kind=shipment"' in html
    assert 'href="/?sink=erp&amp;state=dead"' in html
    assert 'href="/?sink=archive&amp;state=pending"' in html
    assert 'href="/?sink=archive&amp;state=dead"' not in html  # a 0 leads nowhere
    assert _ids(await _html(inspector, "/?kind=shipment")) == [shipment]
    assert _ids(await _html(inspector, "/?sink=erp&state=dead")) == [order]
    assert _ids(await _html(inspector, "/?sink=erp&state=pending")) == [shipment]
    assert _ids(await _html(inspector, "/?sink=archive")) == [order]
    assert _ids(await _html(inspector, "/?sink=nowhere")) == []


async def test_the_sink_filter_pages_backwards(
    inspector: TestClient, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tcwebhook.inspector.views.PAGE_SIZE", 2)
    ids = []
    for step in range(7):
        body = sample("order-event.json")
        body["meta"]["messageId"] = f"sink-page-{step}"
        ids.append(store_body(store, body, tasks=("erp",) if step % 2 else ("archive",)))
    erp = [event_id for step, event_id in enumerate(ids) if step % 2][::-1]
    html = await _html(inspector, "/?sink=erp")
    assert _ids(html) == erp[:2] and "data-live" not in html
    older = re.search(r'href="(/\?sink=erp&amp;before=\d+)">older', html)
    assert older is not None
    html = await _html(inspector, older.group(1).replace("&amp;", "&"))
    assert _ids(html) == erp[2:]


@pytest.mark.usefixtures("store_backend")  # the list and retry read through Store
async def test_retry_dead_needs_the_token_and_the_origin(
    inspector: TestClient, store: Store
) -> None:
    first = store_body(store, sample("order-event.json"), tasks=("erp",))
    body = sample("order-event.json")
    body["meta"]["messageId"] = "retry-dead-2"
    second = store_body(store, body, tasks=("erp",))
    _dead(store, first)
    _dead(store, second)
    body["meta"]["messageId"] = "retry-dead-3"
    delivered = store_body(store, body, tasks=("erp",))
    [task] = store.get_event(delivered).tasks
    store.finish_tasks([Outcome(task, "done")])
    token = csrf_of(await _html(inspector, "/status"))
    origin = str(inspector.make_url("")).rstrip("/")
    refused = [
        ({"Origin": "http://evil.example"}, {"csrf_token": token}),
        ({"Origin": origin}, {}),
        ({"Origin": origin}, {"csrf_token": "0" * 64}),
    ]
    for headers, form in refused:
        response = await inspector.post(
            "/status/retry-dead", data=form, headers=headers, allow_redirects=False
        )
        assert response.status == 403, (headers, form)
    assert {task.state for e in (first, second) for task in store.get_event(e).tasks} == {"dead"}

    response = await inspector.post(
        "/status/retry-dead", data={"csrf_token": token}, headers={"Origin": origin},
        allow_redirects=False,
    )  # fmt: skip
    assert response.status == 303
    assert response.headers["Location"] == "/status?requeued=2"
    assert {task.state for e in (first, second) for task in store.get_event(e).tasks} == {"pending"}
    assert [task.state for task in store.get_event(delivered).tasks] == ["done"]
    html = await _html(inspector, "/status?requeued=2")
    assert "2 dead delivery(ies) re-queued" in html
    response = await inspector.post(
        "/status/retry-dead", data={"csrf_token": token, "sink": "nowhere"},
        headers={"Origin": origin}, allow_redirects=False,
    )  # fmt: skip
    assert response.status == 400
    assert "no deliveries to a sink of that name" in await response.text()


async def test_favicon_is_served(inspector: TestClient) -> None:
    response = await inspector.get("/favicon.ico")
    assert response.status == 200
    data = await response.read()
    assert data[:4] == b"\x00\x00\x01\x00" and len(data) < 4096


async def test_a_line_the_previous_event_lacked_is_not_shown_new(
    inspector: TestClient, store: Store
) -> None:
    ids = [
        store_body(store, order(step, positions))
        for step, positions in enumerate((("0001", "0002"), ("0001",), ("0001", "0002"), ("0003",)))
    ]
    html = await _html(inspector, f"/events/{ids[2]}")
    assert 'data-key="0002"' in html and 'class="badge new"' not in html
    html = await _html(inspector, f"/events/{ids[3]}")
    assert re.search(r'<tr class="[^"]*\bnew" data-key="0003">', html)
