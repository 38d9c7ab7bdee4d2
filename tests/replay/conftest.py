"""Fixtures for replay: the real receiver app over TLS, and small fake endpoints."""

from __future__ import annotations

import asyncio
import os
import ssl
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme
from aiohttp import web
from aiohttp.test_utils import TestServer

from tcwebhook.config import AuthSettings, Settings
from tcwebhook.replay import Target
from tcwebhook.server.app import create_app
from tcwebhook.store import SqliteStore, open_store

TOKEN = "replay-test-token-5b1f0e"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
AUTHORIZATION = f"Bearer {TOKEN}"

ServerFactory = Callable[..., Awaitable[TestServer]]


@pytest.fixture
def ca_file(tls_ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "test-ca.pem"
    tls_ca.cert_pem.write_to_path(str(path))
    return path


@dataclass
class Receiver:
    """The real ``serve`` app, in-process over TLS, with its store."""

    server: TestServer
    store: SqliteStore
    settings: Settings
    ca_file: Path

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    def target(self, **changes: object) -> Target:
        paths = self.settings.server.paths
        values: dict[str, object] = {
            "order_url": self.url(paths.order),
            "shipment_url": self.url(paths.shipment),
            "ca_file": self.ca_file,
            "authorization": AUTHORIZATION,
        }
        values.update(changes)
        return Target(**values)  # type: ignore[arg-type]


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


@dataclass
class Fake:
    """A fake endpoint answering from a script of status codes; records what it received."""

    server: TestServer
    statuses: list[int]
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return str(self.server.make_url("/hook"))


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


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli() -> Callable[..., Awaitable[CliResult]]:
    """Run the real ``tcwebhook`` in a subprocess (the test's servers keep serving meanwhile)."""

    async def run(
        *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
    ) -> CliResult:
        environment = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
        # Run the package beside these tests, whatever the environment has installed.
        environment["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tcwebhook",
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=environment,
        )
        out, err = await asyncio.wait_for(process.communicate(stdin), timeout=60)
        assert process.returncode is not None
        return CliResult(process.returncode, out.decode(), err.decode())

    return run


@pytest.fixture
def free_port() -> Iterator[int]:
    """A loopback port with nothing listening on it."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield port
