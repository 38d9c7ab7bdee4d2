"""Shared fixtures: a throwaway trustme CA, server and client TLS contexts, hermetic data dirs."""

from __future__ import annotations

import ssl
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.pg import PostgresServer, PostgresUnavailable, start_server

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def hermetic_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test gets its own data dir and working directory, and no TCWEBHOOK_* from outside."""
    import os

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


def legacy_client_context(version: ssl.TLSVersion) -> ssl.SSLContext:
    """A client that offers only ``version`` (old versions need OpenSSL security level 0)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():  # the old versions are deprecated: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = version
        context.maximum_version = version
    return context


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


def backend_url(tmp_path: Path) -> str:
    """The store URL the current backend uses: $TCWEBHOOK_STORE_URL, else SQLite in tmp_path."""
    import os

    return os.environ.get("TCWEBHOOK_STORE_URL") or f"sqlite:///{tmp_path}/data/events.db"
