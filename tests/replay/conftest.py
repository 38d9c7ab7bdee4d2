"""Fixtures for replay: the real receiver app over TLS, and small fake endpoints."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import web

from tcwebhook.config import AuthSettings, Settings
from tcwebhook.server.app import create_app
from tcwebhook.store import Store, open_store
from tests.helpers.cli import CliRunner, Result, run_cli
from tests.helpers.replay import TOKEN, Fake, Receiver, ServerFactory


@pytest.fixture
async def receiver_at(
    aiohttp_server: ServerFactory, server_ssl_ctx: ssl.SSLContext, ca_file: Path, tmp_path: Path
) -> AsyncIterator[Callable[[str], Awaitable[Receiver]]]:
    """Start another receiver (its own data directory and store) under ``tmp_path / name``."""
    stores: list[Store] = []

    async def start(name: str) -> Receiver:
        settings = Settings(data_dir=tmp_path / name, auth=AuthSettings(token=TOKEN))
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = open_store(settings.store_url)
        stores.append(store)
        server = await aiohttp_server(create_app(settings, store), ssl=server_ssl_ctx)
        return Receiver(server, store, settings, ca_file)

    yield start
    for store in stores:
        store.close()


@pytest.fixture
async def receiver(receiver_at: Callable[[str], Awaitable[Receiver]]) -> Receiver:
    """The receiver on the data directory the CLI uses (TCWEBHOOK_DATA_DIR)."""
    return await receiver_at("data")


@pytest.fixture
def fake_endpoint(
    aiohttp_server: ServerFactory, server_ssl_ctx: ssl.SSLContext
) -> Callable[[list[int]], Awaitable[Fake]]:
    """Start an endpoint that answers the given statuses in turn (the last one repeats)."""

    async def start(statuses: list[int]) -> Fake:
        fake: Fake

        async def handle(request: web.Request) -> web.Response:
            body = await request.read()
            fake.requests.append((request.method, request.path_qs, dict(request.headers), body))
            status = fake.statuses[min(len(fake.requests), len(fake.statuses)) - 1]
            return web.json_response({"status": status}, status=status)

        app = web.Application()
        app.router.add_route("*", "/hook", handle)
        app.router.add_route("*", "/hook/{tail:.*}", handle)
        server = await aiohttp_server(app, ssl=server_ssl_ctx)
        fake = Fake(server, statuses)
        return fake

    return start


@pytest.fixture
def cli() -> CliRunner:
    """Run the real ``tcwebhook`` in a subprocess (the test's servers keep serving meanwhile)."""

    async def run(
        *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
    ) -> Result:
        return await run_cli(
            *args, stdin=stdin, env={"COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
        )

    return run


@pytest.fixture
def free_port() -> Iterator[int]:
    """A loopback port with nothing listening on it."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield port
