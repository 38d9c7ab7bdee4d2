"""Fixtures for replay: the real receiver app over TLS, and small fake endpoints."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import web

from tcwebhook.config import AuthSettings, Settings
from tcwebhook.server.app import create_app
from tcwebhook.store import open_store
from tests.helpers.cli import CliRunner, Result, run_cli
from tests.helpers.replay import TOKEN, Fake, Receiver, ServerFactory


@pytest.fixture
async def receiver(
    aiohttp_server: ServerFactory, server_ssl_ctx: ssl.SSLContext, ca_file: Path, tmp_path: Path
) -> AsyncIterator[Receiver]:
    settings = Settings(data_dir=tmp_path / "data", auth=AuthSettings(token=TOKEN))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(settings.store_url)
    server = await aiohttp_server(create_app(settings, store), ssl=server_ssl_ctx)
    yield Receiver(server, store, settings, ca_file)
    store.close()


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
