"""The inspector in a real browser (Debian's Chromium driven by Playwright) against the real
``tcwebhook serve`` and ``tcwebhook inspect`` in their own processes.

One browser for the whole session; each test opens its own context (cookies). Screenshots of
the main pages are kept in test-artifacts/inspector/.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import pytest_asyncio
from aiohttp import web

from tcwebhook.config import Settings, load_settings
from tcwebhook.delivery.requeue import requeue_deliveries
from tcwebhook.replay import ReplayOptions, load_sources, replay, resolve_target
from tcwebhook.store import Outcome, SqliteStore, open_store
from tests.helpers.inspector import SAMPLES, sample, store_body

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "inspector"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-extensions",
]  # fmt: skip
LIVE_WITHIN_MS = 1000

pytestmark = [
    pytest.mark.asyncio(loop_scope="session"),
    # In CI (.ci/run installs it) a missing Chromium fails these tests rather than skip them.
    pytest.mark.skipif(
        not CHROMIUM.exists() and not os.environ.get("CI"),
        reason="needs Debian's chromium (.ci/run installs it)",
    ),
]

playwright_api = pytest.importorskip("playwright.async_api")


@dataclass
class Served:
    """A running ``tcwebhook serve`` with its inspector."""

    config: Path
    settings: Settings
    inspector: str  # the inspector's URL, ending in /
    flag: Path  # the command sink succeeds once this file exists

    def store(self) -> SqliteStore:
        return open_store(self.settings.store_url)


def _environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("TCWEBHOOK_", "TRADECLOUD_"))}


def _wait_line(process: subprocess.Popen[str], stream: Any, pattern: str) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = stream.readline()
        if re.search(pattern, line):
            return str(line)
        if not line and process.poll() is not None:
            break
    process.kill()
    raise AssertionError(
        f"no line matching {pattern!r}: {process.stderr and process.stderr.read()}"
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("served")
    flag = root / "erp-is-up"
    config = root / "tcwebhook.yaml"
    config.write_text(
        f"""
data_dir: {root / "data"}
server:
  port: 0
inspector:
  listen: 127.0.0.1:0
sinks:
  - name: erp
    type: command
    events: ["OrderLinesRejectedBySupplier"]
    run: ["sh", "-c", "cat > /dev/null; test -e {flag}"]
    retry:
      max_attempts: 1
"""
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tcwebhook",
            "serve",
            "--config",
            str(config),
            "--log-format",
            "json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(),
    )
    banner = json.loads(_wait_line(process, process.stdout, r'"listening"'))
    port = int(banner["order_url"].rsplit(":", 1)[1].split("/")[0])
    settings = load_settings(config, {"server.port": port})
    with process:
        try:
            # As a person lands on the list first: that starts the page worker, so that no
            # test's first event page waits for a new interpreter on a loaded machine.
            urllib.request.urlopen(banner["inspector_url"], timeout=30).close()
            yield Served(config, settings, banner["inspector_url"], flag)
        finally:
            process.terminate()
            process.wait(timeout=15)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        yield launched
        await launched.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def context(browser: Any) -> AsyncIterator[Any]:
    """One context (one inspector session) for all tests: a new context costs a second."""
    opened = await browser.new_context(viewport={"width": 1400, "height": 900})
    # Any script that runs where it should not would call this.
    await opened.add_init_script("window.__alerts = []; window.alert = (m) => __alerts.push(m);")
    yield opened
    await opened.close()


@pytest_asyncio.fixture(loop_scope="session")
async def page(context: Any) -> AsyncIterator[Any]:
    opened = await context.new_page()
    opened.set_default_timeout(5000)
    yield opened
    await opened.close()


async def send(served: Served, *specs: str | dict[str, Any]) -> list[int]:
    """Send events to the serve as Tradecloud would; the stored ids."""
    ids = []
    for spec in specs:
        if isinstance(spec, dict):
            path = served.config.parent / f"body-{time.monotonic_ns()}.json"
            path.write_bytes(orjson.dumps(spec))
            spec = str(path)
        sources = load_sources([spec], store_url=served.settings.store_url)
        # A new message id each time: a sample sent twice would otherwise be a duplicate.
        options = ReplayOptions(fresh_ids=True, timeout=10, keep_response=True)
        report = await replay(sources, resolve_target(served.settings), options)
        result = report.results[0]
        assert result.delivered and result.response_body, result
        answer = orjson.loads(result.response_body)
        assert answer["status"] == "stored", answer
        ids.append(answer["id"])
    return ids


async def _latest(served: Served) -> int:
    store = served.store()
    try:
        return store.latest_event_id()
    finally:
        store.close()


async def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def po_number(body: dict[str, Any]) -> str:
    return str(body["orderEvent"]["buyerOrder"]["purchaseOrderNumber"])


# ------------------------------------------------------------------------------------------


async def test_list_updates_live_when_events_arrive(served: Served, page: Any) -> None:
    await page.goto(served.inspector)
    before = await page.locator("#rows tr").count()
    await asyncio.sleep(0.3)  # the live stream is open
    [event_id] = await send(served, "order-issued")
    started = time.monotonic()
    await page.locator(f'#rows tr[data-id="{event_id}"]').wait_for(timeout=LIVE_WITHIN_MS)
    assert time.monotonic() - started < LIVE_WITHIN_MS / 1000
    assert await page.locator("#rows tr").count() == before + 1
    assert await page.locator("#rows tr").first.get_attribute("data-id") == str(event_id)
    await shot(page, "events")


async def test_filters_and_search(served: Served, page: Any) -> None:
    order = sample("order-event.json")
    order["meta"]["messageId"] = "filters-order"
    order["orderEvent"]["buyerOrder"]["purchaseOrderNumber"] = "PO-FILTER-1"
    order_id, shipment_id = await send(served, order, "shipment-issued")
    await page.goto(served.inspector)
    await page.select_option("select[name=kind]", "shipment")
    await page.click("form.filters button[type=submit]")
    kinds = await page.locator("#rows tr td:nth-child(3)").all_text_contents()
    assert kinds and set(kinds) == {"shipment"}
    assert await page.locator(f'#rows tr[data-id="{shipment_id}"]').count() == 1
    await page.goto(served.inspector)
    await page.fill("input[name=q]", "PO-FILTER")
    await page.click("form.filters button[type=submit]")
    assert await page.locator("#rows tr").count() == 1
    assert await page.locator("#rows tr").first.get_attribute("data-id") == str(order_id)
    await page.goto(served.inspector + "?event=OrderLinesAccepted*")
    names = await page.locator("#rows tr td:nth-child(4)").all_text_contents()
    assert names and set(names) == {"OrderLinesAcceptedBySupplier"}


async def test_detail_shows_the_changed_lines_and_what_changed(served: Served, page: Any) -> None:
    expected = orjson.loads((SAMPLES / "EXPECTED.json").read_bytes())["files"]
    first = sample("order-event.json")
    first["orderEvent"]["buyerOrder"]["purchaseOrderNumber"] = "PO-DETAIL-1"
    first["meta"]["messageId"] = "detail-1"
    second = orjson.loads(orjson.dumps(first))
    second["meta"]["messageId"] = "detail-2"
    schedule = second["orderEvent"]["lines"][1]["deliverySchedule"]
    schedule[0]["quantity"] = 300
    first_id, second_id = await send(served, first, second)

    await page.goto(f"{served.inspector}events/{first_id}")
    marked = await page.locator("table.lines tr.marked td.key").all_text_contents()
    assert marked == expected["order-event.json"]["changedLines"]
    assert await page.locator("td.diff").count() == 0  # nothing before it to compare with

    await page.goto(f"{served.inspector}events/{second_id}")
    assert f"event #{first_id}" in await page.locator("p.compared").text_content()
    changed = page.locator('table.lines tr[data-key="0002"] td.diff')
    assert await changed.count() == 1
    assert "300" in await changed.text_content()
    assert "250.5" in await changed.locator("del").text_content()
    assert await page.locator('table.lines tr[data-key="0001"] td.diff').count() == 0
    headers = await page.locator("table.headers").text_content()
    assert "present (Bearer)" in headers
    assert (
        served.settings.auth.token is None or served.settings.auth.token not in await page.content()
    )
    await shot(page, "event")


async def test_shipment_detail_marks_the_changed_shipment_line(served: Served, page: Any) -> None:
    [event_id] = await send(served, sample("shipment-event.json"))
    await page.goto(f"{served.inspector}events/{event_id}")
    marked = await page.locator("table.lines tr.marked td.key").all_text_contents()
    expected = orjson.loads((SAMPLES / "EXPECTED.json").read_bytes())["files"]
    assert marked == [line["key"] for line in expected["shipment-event.json"]["changedLines"]]


async def test_order_timeline(served: Served, page: Any) -> None:
    body = sample("order-event.json")
    body["orderEvent"]["orderId"] = "timeline-order"
    body["orderEvent"]["buyerOrder"]["purchaseOrderNumber"] = "PO-TIMELINE"
    ids = []
    for step, name in enumerate(("OrderLinesAcceptedBySupplier", "OrderLinesUpdatedByBuyer")):
        body["meta"]["messageId"] = f"timeline-{step}"
        body["eventName"] = name
        body["orderEvent"]["lines"][0]["buyerLine"]["item"]["name"] = f"Tube v{step}"
        ids += await send(served, body)
    await page.goto(f"{served.inspector}events/{ids[1]}")
    await page.click("a[href^='/timeline/']")
    assert "PO-TIMELINE" in await page.locator("h1").text_content()
    steps = page.locator("ol.timeline > li")
    assert [await steps.nth(i).get_attribute("id") for i in range(2)] == [f"event-{i}" for i in ids]
    assert "Tube v0" in await steps.nth(1).locator("td.diff del").first.text_content()
    await shot(page, "timeline")


async def test_retry_action_changes_the_store(served: Served, page: Any) -> None:
    served.flag.unlink(missing_ok=True)
    [event_id] = await send(served, "order-lines-rejected")
    task = await _task_when(served, event_id, "dead")
    assert task.attempts == 1
    served.flag.touch()  # the ERP is back
    await page.goto(f"{served.inspector}events/{event_id}")
    await page.click("button.retry")
    assert "1 delivery(ies) re-queued" in await page.locator("p.notice").text_content()
    assert (await _task_when(served, event_id, "done")).state == "done"


async def test_delivery_state_of_a_shown_row_updates_live(served: Served, page: Any) -> None:
    served.flag.unlink(missing_ok=True)
    [event_id] = await send(served, "order-lines-rejected")
    await _task_when(served, event_id, "dead")
    await page.goto(served.inspector)
    cell = page.locator(f'#rows tr[data-id="{event_id}"] td.deliveries')
    assert (await cell.text_content()).strip() == "erp: dead"
    await page.evaluate("window.__notReloaded = true")
    served.flag.touch()  # the ERP is back; re-queue as 'events retry' does
    store = served.store()
    try:
        assert requeue_deliveries(store, event_id, None, dead_only=False) == 1
    finally:
        store.close()
    await _task_when(served, event_id, "done")
    started = time.monotonic()
    await page.locator(f'#rows tr[data-id="{event_id}"] td.deliveries span.state.done').wait_for(
        timeout=LIVE_WITHIN_MS * 2
    )
    assert time.monotonic() - started < LIVE_WITHIN_MS * 2 / 1000
    assert (await cell.text_content()).strip() == "erp: done"
    assert await page.evaluate("window.__notReloaded") is True
    assert await page.locator(f'#rows tr[data-id="{event_id}"]').count() == 1


async def test_replay_and_sample_actions_store_new_events(served: Served, page: Any) -> None:
    [event_id] = await send(served, "order-lines-accepted")
    await page.goto(f"{served.inspector}events/{event_id}")
    await page.click("button.replay")
    link = page.locator("a#stored")
    await link.wait_for()
    replayed = int((await link.get_attribute("href")).rsplit("/", 1)[1])
    assert replayed > event_id
    assert "delivered" in await page.locator("dd.verdict").text_content()
    await page.goto(served.inspector)
    await page.select_option("select[name=sample]", "shipment-issued")
    await page.click("section.actions button[type=submit]")
    await page.locator("a#stored").wait_for()
    assert await _latest(served) > replayed
    await shot(page, "sent")


async def test_script_in_a_payload_does_not_run(served: Served, page: Any) -> None:
    body = sample("order-event.json")
    body["meta"]["messageId"] = "script-payload"
    evil = '<script>alert("script")</script><img src=x onerror="alert(\'onerror\')">'
    body["orderEvent"]["buyerOrder"]["purchaseOrderNumber"] = evil
    body["orderEvent"]["lines"][0]["buyerLine"]["item"]["name"] = evil
    await page.goto(served.inspector)
    [event_id] = await send(served, body)
    await page.locator(f'#rows tr[data-id="{event_id}"]').wait_for()  # inserted live
    await page.goto(f"{served.inspector}events/{event_id}")
    await page.goto(f"{served.inspector}timeline/{body['orderEvent']['orderId']}")
    await page.goto(f"{served.inspector}events/{event_id}")
    assert evil in await page.locator("dl.facts").text_content()  # shown as text
    assert await page.evaluate("window.__alerts") == []
    assert await page.locator("main img").count() == 0


async def test_a_cross_origin_post_is_refused(served: Served, page: Any) -> None:
    [event_id] = await send(served, "order-issued")
    await page.goto(f"{served.inspector}events/{event_id}")
    token = await page.locator("input[name=csrf_token]").first.get_attribute("value")
    before = await _latest(served)
    attacker = web.Application()
    form = (
        f'<form method="post" action="{served.inspector}samples/send">'
        f'<input name="csrf_token" value="{token}"><input name="sample" value="order-issued">'
        "</form><script>document.forms[0].submit()</script>"
    )

    async def attacker_page(request: web.Request) -> web.Response:
        return web.Response(text=form, content_type="text/html")

    attacker.router.add_get("/", attacker_page)
    runner = web.AppRunner(attacker)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        async with page.expect_response(f"{served.inspector}samples/send") as answer:
            await page.goto(f"http://127.0.0.1:{port}/")
        assert (await answer.value).status == 403
    finally:
        await runner.cleanup()
    await asyncio.sleep(0.3)
    assert await _latest(served) == before


async def test_status_page(served: Served, page: Any) -> None:
    await page.goto(served.inspector + "status")
    assert await page.locator("#status table.counts").count() == 2
    before = await page.locator("#status").text_content()
    await asyncio.sleep(0.3)  # the live stream is open
    await send(served, "order-issued")
    await page.wait_for_function(
        "(before) => document.getElementById('status').textContent !== before", arg=before
    )
    await shot(page, "status")


async def test_inspect_reads_a_store_another_process_fills(tmp_path: Path, page: Any) -> None:
    data = tmp_path / "copy"
    store = open_store(f"sqlite:///{data / 'events.db'}")
    try:
        first = store_body(store, sample("order-event.json"))
        process = subprocess.Popen(
            [sys.executable, "-m", "tcwebhook", "inspect", "--listen", "127.0.0.1:0",
             "--data-dir", str(data)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_environment(),
        )  # fmt: skip
        with process:
            line = _wait_line(process, process.stderr, r"inspector on http://")
            url = re.search(r"(http://\S+)", line).group(1)  # type: ignore[union-attr]
            await page.goto(url)
            assert await page.locator(f'#rows tr[data-id="{first}"]').count() == 1
            await asyncio.sleep(0.3)
            second = store_body(store, sample("shipment-event.json"))
            await page.locator(f'#rows tr[data-id="{second}"]').wait_for(timeout=LIVE_WITHIN_MS * 2)
            process.terminate()
            assert process.wait(timeout=10) == 0
    finally:
        store.close()


async def _task_when(served: Served, event_id: int, state: str, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        store = served.store()
        try:
            [task] = store.get_event(event_id).tasks
        finally:
            store.close()
        if task.state == state or time.monotonic() > deadline:
            assert task.state == state, task
            return task
        await asyncio.sleep(0.1)


async def test_event_body_tree_folds_and_search_finds_a_nested_value(
    served: Served, context: Any, page: Any
) -> None:
    body = sample("order-event.json")
    body["meta"]["messageId"] = "tree-search"
    [event_id] = await send(served, body)
    await page.goto(f"{served.inspector}events/{event_id}")
    nested = page.locator("#body-tree .value", has_text="Stainless strip 40x2 mm")
    assert await nested.count() == 1
    assert not await nested.is_visible()  # lines[1].buyerLine.item: folded
    assert (await page.locator("#answer dd.status").text_content()).startswith("200 ")
    await page.fill(".body-tools[data-for=body] .tree-search", "stainless STRIP")
    await nested.wait_for(state="visible")
    assert "hit" in (await nested.get_attribute("class") or "")
    assert "1 found" in await page.locator(".body-tools[data-for=body] .tree-hits").text_content()
    # docs/inspector-event.png: the page down to the body (the curl line below names paths).
    end = await page.locator("h2", has_text="Send again").bounding_box()
    scrolled = await page.evaluate("window.scrollY")  # the search scrolled to its find
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(
        path=str(ARTIFACTS / "event-panels.png"),
        full_page=True,
        clip={"x": 0, "y": 0, "width": 1400, "height": end["y"] + scrolled - 8},
    )
    await page.click(".body-tools[data-for=body] .tree-collapse")
    assert not await nested.is_visible()
    await page.click(".body-tools[data-for=body] .tree-expand")
    assert await nested.is_visible()

    copy = page.locator(".body-tools[data-for=body] button.copy-body")
    assert await copy.is_visible()
    await context.grant_permissions(["clipboard-read", "clipboard-write"])
    await copy.click()
    await page.wait_for_function(
        "(button) => button.textContent !== 'Copy body'", arg=await copy.element_handle()
    )
    if await copy.text_content() == "Copied":
        copied = await page.evaluate("navigator.clipboard.readText()")
        assert orjson.loads(copied)["orderEvent"] == body["orderEvent"]  # a fresh message id


async def test_deliveries_table_fits_a_1400_px_window(served: Served, page: Any) -> None:
    served.flag.unlink(missing_ok=True)
    [event_id] = await send(served, "order-lines-rejected")
    task = await _task_when(served, event_id, "dead")
    store = served.store()
    try:
        # An ERP's error and output as they come: long, and with no place to break.
        long_word = "https://erp.example/api/" + "x" * 400
        store.finish_tasks([Outcome(task, "dead", error=long_word, output=long_word * 3)])
    finally:
        store.close()
    await page.goto(f"{served.inspector}events/{event_id}")
    button = page.locator("table.tasks button.retry")
    box = await button.bounding_box()
    assert box is not None
    viewport = page.viewport_size
    assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], (box, viewport)
    scroll_width = await page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= viewport["width"], scroll_width
    await shot(page, "event-deliveries")


async def test_status_counter_leads_to_the_filtered_list(served: Served, page: Any) -> None:
    served.flag.unlink(missing_ok=True)
    [dead] = await send(served, "order-lines-rejected")
    await _task_when(served, dead, "dead")
    [shipment] = await send(served, "shipment-issued")
    await page.goto(served.inspector + "status")
    await page.click('#status a[href="/?kind=shipment"]')
    await page.wait_for_url(re.compile(r"\?kind=shipment$"))
    kinds = await page.locator("#rows tr td:nth-child(3)").all_text_contents()
    assert kinds and set(kinds) == {"shipment"}
    assert await page.locator(f'#rows tr[data-id="{shipment}"]').count() == 1
    await page.goto(served.inspector + "status")
    await page.click('#status a[href="/?sink=erp&state=dead"]')
    await page.wait_for_url(re.compile(r"\?sink=erp&state=dead$"))
    states = await page.locator("#rows td.deliveries").all_text_contents()
    assert states and all("erp: dead" in state for state in states)
    assert await page.locator(f'#rows tr[data-id="{dead}"]').count() == 1
    assert await page.locator("select[name=sink]").input_value() == "erp"


async def test_retry_dead_from_the_status_page(served: Served, page: Any) -> None:
    served.flag.unlink(missing_ok=True)
    [event_id] = await send(served, "order-lines-rejected")
    await _task_when(served, event_id, "dead")
    served.flag.touch()  # the ERP is back
    await page.goto(served.inspector + "status")
    await page.click("button.retry-dead")
    await page.wait_for_url(re.compile(r"/status\?requeued=\d+$"))
    assert "dead delivery(ies) re-queued" in await page.locator("p.notice").text_content()
    assert (await _task_when(served, event_id, "done")).state == "done"
    response = await page.request.get(served.inspector + "favicon.ico")
    assert response.status == 200
