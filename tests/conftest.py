"""Shared fixtures: a throwaway trustme CA, server and client TLS contexts, hermetic data dirs,
PostgreSQL, and the fake Tradecloud API with the CLI pointed at it."""

from __future__ import annotations

import atexit
import os
import shutil
import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.helpers.cli import CliRunner, Result, run_cli
from tests.helpers.fake_tradecloud import PASSWORD, USERNAME, FakeTradecloud
from tests.helpers.pg import PostgresServer, PostgresUnavailable, start_server


def _share_bytecode_with_subprocesses() -> None:
    """The suite starts a few hundred ``tcwebhook`` interpreters. Where PYTHONDONTWRITEBYTECODE is
    set (CI images often set it), each compiled every module of the package from source again;
    they share a bytecode cache outside the checkout instead, removed after the run."""
    if not os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
        return
    cache = tempfile.mkdtemp(prefix="tcwebhook-tests-bytecode-")
    atexit.register(shutil.rmtree, cache, ignore_errors=True)
    os.environ["PYTHONPYCACHEPREFIX"] = cache


_share_bytecode_with_subprocesses()


@pytest.fixture(autouse=True)
def hermetic_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test gets its own data dir and working directory, and no TCWEBHOOK_* from outside."""
    for name in list(os.environ):
        if name.startswith(("TCWEBHOOK_", "TRADECLOUD_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TCWEBHOOK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    yield


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def tls_certificate(tls_ca: trustme.CA) -> trustme.LeafCert:
    return tls_ca.issue_cert("localhost", "127.0.0.1", "::1")


@pytest.fixture(scope="session")
def server_ssl_ctx(tls_certificate: trustme.LeafCert) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    tls_certificate.configure_cert(ctx)
    return ctx


@pytest.fixture(scope="session")
def client_ssl_ctx(tls_ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    tls_ca.configure_trust(ctx)
    return ctx


@pytest.fixture
def stores() -> Iterator[list]:
    """Stores a test opens, closed after it."""
    opened: list = []
    yield opened
    for store in opened:
        store.close()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session, started on first use.

    Without PostgreSQL the tests that need it are skipped on a developer's machine, but in CI
    (CI=true), whose script installs PostgreSQL, a server that cannot start fails them.
    """
    import os

    try:
        server = start_server()
    except (PostgresUnavailable, OSError) as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"PostgreSQL could not start: {exc}")
        pytest.skip(f"PostgreSQL could not start: {exc}")
    yield server
    server.destroy()


@pytest.fixture(params=["sqlite", "postgres"])
def store_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run the test on each store backend: for PostgreSQL, TCWEBHOOK_STORE_URL names a fresh
    schema, which every command (and ``make_settings``) then uses; SQLite is the default."""
    if request.param == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres")
        monkeypatch.setenv("TCWEBHOOK_STORE_URL", server.new_schema())
    yield request.param


@pytest.fixture
def ca_file(tls_ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "fake-ca.pem"
    tls_ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
async def fake_api(aiohttp_server: Any, server_ssl_ctx: Any) -> FakeTradecloud:
    """The fake API with the shared samples, on an ephemeral loopback port, over TLS."""
    fake = FakeTradecloud.with_samples()
    server = await aiohttp_server(fake.app(), ssl=server_ssl_ctx)
    fake.base_url = f"https://127.0.0.1:{server.port}/v2"
    return fake


@pytest.fixture
def cli(fake_api: FakeTradecloud, ca_file: Path) -> CliRunner:
    """Run ``tcwebhook`` in a real subprocess against the fake API (the loop keeps serving)."""

    async def run(*args: str, env: dict[str, str] | None = None, api: bool = True) -> Result:
        environment = {
            "TRADECLOUD_USERNAME": USERNAME,
            "TRADECLOUD_PASSWORD": PASSWORD,
            "COLUMNS": "160",
            **(env or {}),
        }
        flags = ["--base-url", fake_api.base_url, "--ca-file", str(ca_file)] if api else []
        return await run_cli(*args, *flags, env=environment)

    return run
