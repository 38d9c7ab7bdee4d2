"""The Requests page in a real browser (Debian's Chromium driven by Playwright) against the real
``tcwebhook serve``: a refused request appears live with its fix, a stored one links to its
event. Its screenshot is docs/requests.png (UPDATE_DOCS_SCREENSHOTS=1 refreshes it)."""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

CHROMIUM = Path("/usr/bin/chromium")
DOCS = Path(__file__).resolve().parents[2] / "docs"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "inspector"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
WRONG = "a-token-pasted-wrong-0123456789"
ORDER = {
    "eventName": "OrderIssuedByBuyer",
    "orderEvent": {"order": {"id": "o-browser-1"}, "buyerOrder": {"purchaseOrderNumber": "PO-1"}},
}

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("CI"),
    reason="needs Debian's chromium (.ci/run installs it)",
)
playwright_api = pytest.importorskip("playwright.async_api")


def _serve(root: Path) -> tuple[subprocess.Popen[str], str, str]:
    config = root / "tcwebhook.yaml"
    config.write_text(
        f"data_dir: {root / 'data'}\nserver:\n  port: 0\ninspector:\n  listen: 127.0.0.1:0\n"
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TCWEBHOOK_")}
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
        env=environment,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if re.search(r'"listening"', line):
            banner = json.loads(line)
            return process, banner["order_url"], banner["inspector_url"]
    process.kill()
    raise AssertionError("serve did not start")


async def _post(url: str, token: str, body: bytes) -> int:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the development CA: this test checks the log, not TLS
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers, ssl=context) as response,
    ):
        return response.status


def _token(root: Path) -> str:
    return next((root / "data").glob("*token*")).read_text().strip()


async def test_requests_page_shows_refusals_live_and_links_stored_events(tmp_path: Path) -> None:
    process, order_url, inspector_url = _serve(tmp_path)
    try:
        async with playwright_api.async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
            )
            page = await browser.new_page(viewport={"width": 1400, "height": 700})
            page.set_default_timeout(15000)
            await page.goto(inspector_url + "requests")
            assert await page.locator("nav a[aria-current=page]").inner_text() == "Requests"

            assert await _post(order_url, WRONG, json.dumps(ORDER).encode()) == 401
            assert await _post(order_url.replace("/order", "/ordr"), _token(tmp_path), b"{}") == 404
            assert await _post(order_url, _token(tmp_path), json.dumps(ORDER).encode()) == 200

            # Live: the refused requests appear without a reload (the writer and the page
            # each take about a second), each with its fix.
            fix = page.locator("#status .fix", has_text="re-enter the token")
            await fix.first.wait_for()
            await page.locator("#status a", has_text="stored as event").first.wait_for()
            await page.locator("#status .fix", has_text="server.paths").first.wait_for()
            html = await page.content()
            assert WRONG not in html and _token(tmp_path) not in html
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "requests.png"))
            if os.environ.get("UPDATE_DOCS_SCREENSHOTS"):  # refresh the documentation's copy
                await page.screenshot(path=str(DOCS / "requests.png"))

            await page.locator("#status a", has_text="stored as event").first.click()
            await page.wait_for_url(re.compile(r"/events/\d+$"))
            await browser.close()
    finally:
        process.terminate()
        process.communicate(timeout=15)  # waits, and closes its pipe
