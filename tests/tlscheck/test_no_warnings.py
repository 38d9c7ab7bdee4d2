"""check-tls as a user runs it, in its own process with Python's default warning filters: nothing
on stderr, whatever the installed cryptography deprecates (DSA keys, for one)."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from tests.helpers.pki import Pki, make_dsa_leaf

TLS1 = ssl.TLSVersion.TLSv1


def run_check_tls(*args: str) -> subprocess.CompletedProcess[str]:
    # Python's default filters, as on a user's machine: none of the test run's own.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONWARNINGS"}
    return subprocess.run(
        [sys.executable, "-m", "tcwebhook", "check-tls", *args, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_a_dsa_certificate_file_is_judged_without_a_warning(pki: Pki, tmp_path: Path):
    dsa_leaf = make_dsa_leaf(pki)
    cert = tmp_path / "dsa.pem"
    cert.write_bytes(dsa_leaf.public_bytes(serialization.Encoding.PEM))
    key = pki.write("dsa-check.key", pki.leaf.key_pem)
    chain = pki.write("dsa-chain.pem", pki.intermediate.pem)
    done = run_check_tls(
        "--cert", str(cert), "--key", str(key), "--chain", str(chain),
        "--ca-file", str(pki.root_file), "--servername", "localhost",
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "a DSA key" in done.stdout
    assert done.stderr == ""


@pytest.mark.parametrize("minimum", [TLS1, None], ids=["tls1.0-and-up", "default"])
def test_a_live_check_prints_no_warning(pki: Pki, servers, closed_port: int, minimum):
    # TLS 1.0/1.1 probes use protocol versions Python deprecates: still nothing for the user.
    extra = {"minimum": minimum} if minimum is not None else {}
    server = servers.start(pki.leaf, chain=(pki.intermediate,), **extra)
    done = run_check_tls(
        server.url, "--ca-file", str(pki.root_file), "--servername", "localhost",
        "--http-port", str(closed_port), "--token", "t",
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    assert '"verdict"' in done.stdout
    assert done.stderr == ""
