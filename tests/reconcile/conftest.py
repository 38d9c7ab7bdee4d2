"""Fixtures for reconcile: the fake API holding many changed objects, and a real receiver."""

from __future__ import annotations

import ssl
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from tcwebhook.config import (
    Settings,
)
from tcwebhook.delivery.routing import task_router
from tcwebhook.server.app import create_app
from tcwebhook.store import Store, open_store
from tests.helpers.fake_tradecloud import FakeTradecloud
from tests.helpers.reconcile import Receiver


@pytest.fixture
async def fake_api(aiohttp_server: Any, server_ssl_ctx: ssl.SSLContext) -> FakeTradecloud:
    """The fake API without the shared samples: each test puts the objects it polls."""
    fake = FakeTradecloud()
    server = await aiohttp_server(fake.app(), ssl=server_ssl_ctx)
    fake.base_url = f"https://127.0.0.1:{server.port}/v2"
    return fake


@pytest.fixture
async def receiver_for(
    aiohttp_client: Any, server_ssl_ctx: ssl.SSLContext, client_ssl_ctx: ssl.SSLContext
) -> Any:
    stores: list[Store] = []

    async def make(settings: Settings) -> Receiver:
        store = open_store(settings.store_url)
        stores.append(store)
        app = create_app(settings, store, task_router=task_router(settings))
        server = TestServer(app, host="127.0.0.1")
        await server.start_server(ssl=server_ssl_ctx)
        client = await aiohttp_client(server, connector=aiohttp.TCPConnector(ssl=client_ssl_ctx))
        return Receiver(client, store)

    yield make
    for store in stores:
        store.close()
