"""A receiver app in-process over real TLS, with its store."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from tcwebhook.config import AuthSettings, ServerLimits, ServerSettings, Settings
from tcwebhook.server.app import RequestLog, create_app
from tcwebhook.store import SqliteStore, open_store

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_BODY = 256 * 1024


@dataclass
class Receiver:
    client: TestClient
    store: SqliteStore
    logs: list[RequestLog] = field(default_factory=list)

    async def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> Any:
        merged = {**AUTH, "Content-Type": "application/json", **(headers or {})}
        return await self.client.post(path, data=body, headers=merged)


MakeReceiver = Callable[..., Awaitable[Receiver]]


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
