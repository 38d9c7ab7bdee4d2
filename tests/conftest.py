"""Shared fixtures: a throwaway trustme CA, server and client TLS contexts, hermetic data dirs."""

from __future__ import annotations

import ssl
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

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
