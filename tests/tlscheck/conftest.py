"""Fixtures for the TLS scenarios: keys and PKI made once per run, TLS servers on 127.0.0.1.

Each server is a thread that completes handshakes and answers every HTTP request with a fixed
status (or one computed from the request's headers).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tcwebhook.tlscheck import CheckOptions
from tests.helpers.pki import Keys, Pki, make_ca, make_leaf
from tests.helpers.tls_servers import Servers


@pytest.fixture(scope="session")
def keys() -> Keys:
    curve = ec.SECP256R1()
    return Keys(
        root=ec.generate_private_key(curve),
        intermediate=ec.generate_private_key(curve),
        leaf=ec.generate_private_key(curve),
        other=ec.generate_private_key(curve),
        rsa2048=rsa.generate_private_key(65537, 2048),
        rsa1024=rsa.generate_private_key(65537, 1024),
    )


@pytest.fixture(scope="session")
def pki(keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = make_ca("tcwebhook Test Root", keys.root)
    intermediate = make_ca("tcwebhook Test Intermediate", keys.intermediate, issuer=root)
    leaf = make_leaf(intermediate, keys.leaf)
    return Pki(root, intermediate, leaf, tmp_path_factory.mktemp("pki"), keys)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    pool = Servers(tmp_path)
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def closed_port() -> int:
    """A loopback port nothing listens on (for the plain-HTTP row and connection refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def options(pki: Pki, closed_port: int) -> Callable[..., CheckOptions]:
    """Options for a loopback server: trust the test root, verify localhost, short deadline."""

    def make(**overrides: object) -> CheckOptions:
        values: dict[str, object] = {
            "ca_file": pki.root_file,
            "servername": "localhost",
            "timeout": 5.0,
            "http_port": closed_port,
        }
        values.update(overrides)
        return CheckOptions(**values)  # type: ignore[arg-type]

    return make
