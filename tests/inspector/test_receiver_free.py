"""The real ``serve`` with its inspector: however large the events a page shows, webhooks and
/healthz are answered while the page is being built."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import ssl
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from tcwebhook.datadir import DEV_CA_FILE
from tests.helpers.inspector import sample
from tests.helpers.serve import body, server_log, start_server

BODY_BYTES = 9_600_000  # the size that held the receiver for seconds, under the 10 MiB limit
PROBE_EVERY = 0.05
# Measured on a loaded 2-core machine while the pages were built: at most 0.05 s (median 0.01 s)
# with the pages in a worker process; at most 1.1 s (median 0.08 s) with the same bounded pages
# in a thread of the receiver's process (the GIL); 20 s with the pages on the receiver's loop.
SLOWEST_PROBE = 0.75


def huge_order(message_id: str, quantity: int) -> bytes:
    """An order event of about ``BODY_BYTES``: one line repeated under new positions."""
    event: dict[str, Any] = sample("order-event.json")
    line = event["orderEvent"]["lines"][0]
    size = len(orjson.dumps(line))
    lines = []
    for position in range(BODY_BYTES // size):
        copy = orjson.loads(orjson.dumps(line))
        copy["buyerLine"]["position"] = f"{position:05d}"
        copy["deliverySchedule"][0]["quantity"] = quantity
        lines.append(copy)
    event["orderEvent"]["lines"] = lines
    event["meta"] = {**event["meta"], "messageId": message_id}
    return orjson.dumps(event)


async def _pages_and_probes(
    inspector: str, order_url: str, token: str, ca: Path, paths: list[str]
) -> tuple[list[tuple[int, int]], list[tuple[str, int, float, bool]]]:
    """Open ``paths`` in the inspector; probe the receiver until they are done.

    Returns each page's (status, size) and each probe's (what, status, seconds, whether the
    pages were still being built when it was answered).
    """
    receiver = order_url.split("/tradecloud")[0]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    probes: list[tuple[str, int, float, bool]] = []
    connector = aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=str(ca)))
    timeout = aiohttp.ClientTimeout(total=120)
    async with (
        aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
        aiohttp.ClientSession(timeout=timeout) as browser,
    ):

        async def open_page(path: str) -> tuple[int, int]:
            async with browser.get(inspector.rstrip("/") + path) as response:
                return response.status, len(await response.read())

        pages = asyncio.gather(*(open_page(path) for path in paths))
        while not pages.done():
            for what, method, url, data in (
                ("healthz", "GET", f"{receiver}/healthz", None),
                ("webhook", "POST", order_url, body(str(uuid.uuid4()))),
            ):
                started = time.monotonic()
                async with session.request(method, url, data=data, headers=headers) as response:
                    await response.read()
                probes.append((what, response.status, time.monotonic() - started, not pages.done()))
            await asyncio.sleep(PROBE_EVERY)
        return await pages, probes


def test_a_huge_event_in_the_inspector_does_not_hold_webhooks(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    process, order_url = start_server(data_dir, "--port", "0", "--inspector", "127.0.0.1:0")
    try:
        inspector = orjson.loads(server_log(process).split(b"\n", 1)[0])["inspector_url"]
        token = (data_dir / "token").read_text().strip()
        ca = data_dir / DEV_CA_FILE
        context = ssl.create_default_context(cafile=str(ca))
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

        async def scenario() -> Any:
            connector = aiohttp.TCPConnector(ssl=context)
            async with aiohttp.ClientSession(connector=connector) as session:
                for quantity in (120, 121):  # two versions: the second compares with the first
                    data = huge_order(str(uuid.uuid4()), quantity)
                    assert len(data) > 9_000_000
                    async with session.post(
                        order_url, data=io.BytesIO(data), headers=headers
                    ) as response:
                        assert response.status == 200, await response.text()
            order_id = sample("order-event.json")["orderEvent"]["orderId"]
            return await _pages_and_probes(
                inspector, order_url, token, ca, ["/events/2", f"/timeline/{order_id}"]
            )

        pages, probes = asyncio.run(scenario())
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert all(status == 200 for _, status, _, _ in probes), probes
    # The receiver answered while the pages were still being built, and never slowly.
    during = [probe for probe in probes if probe[3]]
    assert len(during) >= 4, probes
    assert max(seconds for _, _, seconds, _ in probes) < SLOWEST_PROBE, probes
    assert [status for status, _ in pages] == [200, 200], pages
    # Each page is bounded however large its events: no 25 MB of HTML for one body.
    assert all(size < 4_000_000 for _, size in pages), pages
    assert b"Traceback" not in server_log(process)


def test_ctrl_c_stops_serve_and_its_page_worker_quietly(tmp_path: Path) -> None:
    """Ctrl-C reaches the whole process group, the page worker included: one stop line, no
    traceback from the worker."""
    data_dir = tmp_path / "data"
    process, _ = start_server(
        data_dir, "--port", "0", "--inspector", "127.0.0.1:0", preexec_fn=os.setsid
    )
    try:
        inspector = orjson.loads(server_log(process).split(b"\n", 1)[0])["inspector_url"]

        async def open_page() -> int:
            async with (
                aiohttp.ClientSession() as browser,
                browser.get(inspector + "timeline/none") as response,
            ):
                return response.status

        assert asyncio.run(open_page()) == 404  # answered by the worker
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    time.sleep(2)  # the worker, had it failed, writes to the same log after serve is gone
    log = server_log(process)
    assert b"Traceback" not in log and b"KeyboardInterrupt" not in log, log[-2000:]


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_the_page_worker_starts_with_the_first_inspector_request(tmp_path: Path) -> None:
    """A receiver nobody inspects carries no second interpreter (its memory is the point)."""
    process, _ = start_server(tmp_path / "data", "--port", "0", "--inspector", "127.0.0.1:0")
    try:
        inspector = orjson.loads(server_log(process).split(b"\n", 1)[0])["inspector_url"]
        time.sleep(1.0)  # what a start-up warm-up would have had
        assert _children(process.pid) == []

        async def open_list() -> int:
            async with aiohttp.ClientSession() as browser, browser.get(inspector) as response:
                return response.status

        assert asyncio.run(open_list()) == 200
        deadline = time.monotonic() + 20
        while not _children(process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _children(process.pid), "the page worker did not start for the inspector"
    finally:
        process.terminate()
        process.wait(timeout=30)
