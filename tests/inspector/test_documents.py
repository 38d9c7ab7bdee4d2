"""Downloading an event's document from the Tradecloud API (the fake one) through the page."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from tcwebhook.config import TradecloudSettings
from tcwebhook.inspector import create_app
from tests.helpers.fake_tradecloud import PASSWORD, USERNAME, FakeTradecloud
from tests.helpers.inspector import csrf_of, sample, store_body

STORED = "1c9a7b52-3d84-4e06-b1f7-95a2c4e8d013"


async def test_a_document_downloads_when_api_credentials_are_configured(
    aiohttp_client: Any, settings: Any, store: Any, fake_api: FakeTradecloud, ca_file: Path
) -> None:
    event_id = store_body(store, sample("order-documents-event.json"))
    without = await aiohttp_client(create_app(settings, store))
    assert "/download" not in await (await without.get(f"/events/{event_id}")).text()

    api = TradecloudSettings(
        base_url=fake_api.base_url, username=USERNAME, password=PASSWORD, ca_file=ca_file
    )
    client = await aiohttp_client(create_app(dataclasses.replace(settings, tradecloud=api), store))
    html = await (await client.get(f"/events/{event_id}")).text()
    assert f'action="/documents/{STORED}/download"' in html
    assert PASSWORD not in html
    origin = str(client.make_url("")).rstrip("/")
    response = await client.post(
        f"/documents/{STORED}/download", data={"csrf_token": csrf_of(html)},
        headers={"Origin": origin},
    )  # fmt: skip
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert "order-confirmation-SO-88121.pdf" in response.headers["Content-Disposition"]
    assert await response.read() == b"%PDF-1.4 order confirmation\n"
