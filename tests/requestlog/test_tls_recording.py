"""Failed TLS handshakes at the real ``serve`` show in ``tcwebhook requests`` with their reason."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import ssl
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.helpers.cli import tcwebhook
from tests.helpers.serve import server_log, start_server


def _untrusting_handshake(host: str, port: int) -> None:
    """A client that does not trust the development CA, as Tradecloud would not."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no CA at all: nothing is trusted
    with (
        socket.create_connection((host, port), timeout=10) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        context.wrap_socket(raw, server_hostname="webhooks.example.com")


def _plain_http(host: str, port: int) -> None:
    with socket.create_connection((host, port), timeout=10) as raw:
        raw.sendall(b"POST /tradecloud/order HTTP/1.1\r\nHost: x\r\n\r\n")
        raw.settimeout(10)
        with contextlib.suppress(OSError):
            raw.recv(100)


def test_failed_handshakes_are_recorded_with_their_reason(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    process, url = start_server(data_dir)
    try:
        address = urlsplit(url)
        host, port = address.hostname or "127.0.0.1", address.port or 0
        _untrusting_handshake(host, port)
        _plain_http(host, port)
        time.sleep(0.5)  # the server sees each connection end
    finally:
        process.send_signal(signal.SIGTERM)  # the writer writes what it holds, then stops
        process.wait(timeout=30)
    assert process.returncode == 0, server_log(process)

    result = tcwebhook("requests", "--refused", "--json", "--data-dir", str(data_dir))
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    by_reason = {row["reason"]: row for row in rows}
    assert all(row["status"] is None and row["kind"] == "tls" for row in rows), rows
    assert all(row["tradecloud"] == "unknown" and row["method"] is None for row in rows)
    untrusted = [row for row in rows if "unknown_ca" in row["reason"]]
    assert len(untrusted) == 1, by_reason
    assert "server.tls.cert" in untrusted[0]["fix"] and untrusted[0]["client"] == "127.0.0.1"
    assert any("plain HTTP" in row["reason"] for row in rows), by_reason

    table = tcwebhook("requests", "--refused", "--data-dir", str(data_dir))
    assert table.returncode == 0 and "TLS" in table.stdout and "unknown_ca" in table.stdout
