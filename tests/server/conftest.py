"""A receiver app in-process over real TLS, with its store."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from tcwebhook.config import AuthSettings, ServerLimits, ServerSettings, Settings
from tcwebhook.server.app import RequestLog, create_app
from tcwebhook.store import SqliteStore, open_store
from tests.helpers.receiver import MAX_BODY, TOKEN, MakeReceiver, Receiver


@pytest.fixture
async def make_receiver(
    aiohttp_client: Any,
    server_ssl_ctx: ssl.SSLContext,
    client_ssl_ctx: ssl.SSLContext,
    tmp_path: Path,
) -> Any:
    stores: list[SqliteStore] = []

    async def make(
        auth: AuthSettings | None = None,
        busy_timeout: float = 2.0,
        limits: ServerLimits | None = None,
        metrics: Any = None,
        **server_options: Any,
    ) -> Receiver:
        settings = Settings(
            data_dir=tmp_path / "data",
            server=ServerSettings(
                max_body_bytes=MAX_BODY, limits=limits or ServerLimits(), **server_options
            ),
            auth=auth or AuthSettings(type="bearer", token=TOKEN),
        )
        store = open_store(settings.store_url, busy_timeout=busy_timeout)
        stores.append(store)
        logs: list[RequestLog] = []
        app = create_app(settings, store, request_logger=logs.append, metrics=metrics)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server(ssl=server_ssl_ctx)
        client = await aiohttp_client(server, connector=aiohttp.TCPConnector(ssl=client_ssl_ctx))
        return Receiver(client, store, logs)

    yield make
    for store in stores:
        store.close()


@pytest.fixture
async def receiver(make_receiver: MakeReceiver) -> Receiver:
    return await make_receiver()
