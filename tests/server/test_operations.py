"""The real ``serve`` under a service manager: readiness, socket activation, SIGHUP reload."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trustme

from tests.helpers.serve import REPOSITORY, start_server

TOKEN = "first-token-0123456789"


def _datagrams(sock: socket.socket, until: str, timeout: float = 20.0) -> list[str]:
    received: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            received.append(sock.recv(4096).decode())
        except TimeoutError:
            break
        if any(until in message.split("\n") for message in received[-1:]):
            return received
    raise AssertionError(f"no {until} among {received}")


def test_ready_and_stopping_are_sent_to_notify_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    address = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(address)
        monkeypatch.setenv("NOTIFY_SOCKET", address)
        process, _ = start_server(tmp_path / "data")
        try:
            ready = _datagrams(listener, "READY=1")
            assert f"MAINPID={process.pid}" in ready[-1]
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=15) == 0
        assert _datagrams(listener, "STOPPING=1")


def _https_get(port: int, ca: Path, path: str = "/healthz") -> tuple[int, bytes]:
    """Status and the DER certificate the server presented."""
    context = ssl.create_default_context(cafile=str(ca))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        status = int(tls.recv(64).split()[1])
        certificate = tls.getpeercert(binary_form=True)
    assert certificate is not None
    return status, certificate


def test_socket_passed_in_by_the_service_manager_is_used(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    listening = socket.create_server(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    # Like systemd: the socket as fd 3, LISTEN_PID set to the pid that runs serve.
    launcher = (
        "import os, sys; os.dup2(int(sys.argv[1]), 3); "
        "os.environ['LISTEN_PID'] = str(os.getpid()); "
        "os.execv(sys.executable, [sys.executable, '-m', 'tcwebhook', 'serve', "
        "'--log-format', 'json'])"
    )
    env = {**os.environ, "TCWEBHOOK_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPOSITORY),
           "LISTEN_FDS": "1"}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-c", launcher, str(listening.fileno())],
        pass_fds=(listening.fileno(),),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    listening.close()  # only the server holds it now
    try:
        assert process.stdout is not None
        banner = process.stdout.readline().decode()
        assert f":{port}/tradecloud/order" in banner, banner
        status, _ = _https_get(port, data_dir / "dev-ca.pem")
        assert status == 200
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        assert process.stdout is not None
        process.stdout.close()


def _write_config(path: Path, cert: Path, key: Path, token: str) -> None:
    path.write_text(f"server:\n  tls:\n    cert: {cert}\n    key: {key}\nauth:\n  token: {token}\n")


def _issue(ca: trustme.CA, directory: Path, name: str) -> tuple[Path, Path]:
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    cert, key = directory / f"{name}.pem", directory / f"{name}-key.pem"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    key.write_bytes(leaf.private_key_pem.bytes())
    return cert, key


def _wait_for(log: Path, text: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in {log.read_text()}")


def test_sighup_reloads_certificate_and_token_and_refuses_a_bad_certificate(
    tmp_path: Path, tls_ca: trustme.CA
) -> None:
    ca_file = tmp_path / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(ca_file))
    cert, key = _issue(tls_ca, tmp_path, "live")
    first = cert.read_bytes()
    config = tmp_path / "tcwebhook.yaml"
    _write_config(config, cert, key, TOKEN)
    process, url = start_server(tmp_path / "data", "--port", "0", "--config", str(config))
    port = int(url.split(":")[2].split("/")[0])
    log = next(tmp_path.glob("serve-*.log"))
    context = ssl.create_default_context(cafile=str(ca_file))
    kept = context.wrap_socket(
        socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname="localhost"
    )
    try:
        _, before = _https_get(port, ca_file)
        renewed_cert, renewed_key = _issue(tls_ca, tmp_path, "renewed")
        cert.write_bytes(renewed_cert.read_bytes())  # what a certbot deploy hook does
        key.write_bytes(renewed_key.read_bytes())
        _write_config(config, cert, key, "second-token-0123456789")
        process.send_signal(signal.SIGHUP)
        _wait_for(log, "reloaded")
        _, after = _https_get(port, ca_file)
        assert after != before and ssl.DER_cert_to_PEM_cert(after).encode() in cert.read_bytes()
        # The connection opened before the reload still works.
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert kept.recv(64).startswith(b"HTTP/1.1 200")
        status, _ = _https_get(port, ca_file, "/tradecloud/order?orderId=x")
        assert status == 401  # the old token was replaced (no Authorization sent here)
        cert.write_bytes(first[: len(first) // 2])  # a truncated certificate
        process.send_signal(signal.SIGHUP)
        _wait_for(log, "reload refused")
        _, still = _https_get(port, ca_file)
        assert still == after
    finally:
        kept.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    assert "second-token" not in log.read_text()
