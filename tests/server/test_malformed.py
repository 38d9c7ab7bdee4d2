"""The real ``serve`` fed malformed requests over raw TLS: right status, no secret in its output."""

from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import zlib
from pathlib import Path

from tcwebhook.datadir import DEV_CA_FILE
from tests.helpers.serve import REPOSITORY, body

TOKEN = "s3cret-token-that-must-never-be-logged"


def exchange(port: int, context: ssl.SSLContext, request: bytes, *, close: bool = False) -> bytes:
    """Send ``request`` over TLS; the status line of the answer (b"" if none)."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(request)
        if close:
            return b""
        answer = b""
        try:
            while b"\r\n" not in answer:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                answer += chunk
        except (ConnectionError, ssl.SSLError):
            pass
        return answer.split(b"\r\n", 1)[0]


def head(*lines: bytes, length: int | None = None, end: bytes = b"\r\n") -> bytes:
    start = [b"POST /tradecloud/order HTTP/1.1", b"Host: localhost"]
    if length is not None:
        start.append(b"Content-Length: %d" % length)
    return end.join([*start, *lines, b"", b""])


AUTH = b"Authorization: Bearer " + TOKEN.encode()
DEEP = (
    b'{"eventName": "OrderIssuedByBuyer", "orderEvent": {"x": ' + b"[" * 1000 + b"]" * 1000 + b"}}"
)
CASES: list[tuple[bytes, bytes | None]] = [
    # (request, expected status; None: the client leaves, nothing to expect)
    (head(AUTH + b"\r", length=2) + b"{}", b"400"),  # "Bearer <token>\r\r\n"
    (head(AUTH + b"\x00", length=2) + b"{}", b"400"),  # a trailing NUL
    (head(AUTH, length=2, end=b"\n") + b"{}", b"400"),  # bare-LF lines
    (head(AUTH + b" \x01", length=2) + b"{}", b"400"),  # a control character after the token
    (head(b"Authorization: Bearer \xff\xfe", length=2) + b"{}", b"401"),  # not UTF-8
    (head(AUTH, length=len(DEEP)) + DEEP, b"400"),  # nested 1,000 levels
    (head(AUTH, b"Content-Encoding: deflate", length=9) + b"not zlib!", b"400"),
    (
        head(AUTH, b"Content-Encoding: deflate", length=20)
        + zlib.compress(body("deflated"))[:20],  # cut short
        b"400",
    ),
    (head(AUTH, length=5000) + b'{"eventName": ', None),  # disconnects mid-body
]


def test_malformed_requests_get_the_right_status_and_never_log_the_token(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    stdout, stderr = tmp_path / "stdout", tmp_path / "stderr"
    env = {
        **os.environ,
        "TCWEBHOOK_DATA_DIR": str(data_dir),
        "TCWEBHOOK_AUTH_TOKEN": TOKEN,
        "PYTHONPATH": str(REPOSITORY),
    }
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "tcwebhook", "serve", "--port", "0"],
            stdout=out,
            stderr=err,
            env=env,
        )
    try:
        port = wait_for_port(stdout, process)
        context = ssl.create_default_context(cafile=str(data_dir / DEV_CA_FILE))
        statuses = [
            exchange(port, context, request, close=expected is None) for request, expected in CASES
        ]
        time.sleep(0.3)  # the server notices the client that left
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
    assert [line[9:12] for line in statuses] == [status or b"" for _, status in CASES]
    out_text, err_text = stdout.read_bytes(), stderr.read_bytes()
    for output in (out_text, err_text):
        assert TOKEN.encode() not in output
        assert b"Traceback" not in output
    # Nothing was answered "retry later": no request line has the status 503 (the lines carry
    # times too, whose milliseconds may well read 503).
    assert not re.search(rb"^\S+  503  ", out_text, re.MULTILINE), out_text
    assert b"stopping" in out_text  # one line when SIGTERM arrives
    assert len(err_text.splitlines()) <= 5, err_text


def wait_for_port(stdout: Path, process: subprocess.Popen[bytes]) -> int:
    """The port from the banner, which serve writes on stdout with its other log lines."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = re.search(rb"listening on port (\d+)", stdout.read_bytes())
        if found:
            return int(found.group(1))
        assert process.poll() is None, "serve stopped"
        time.sleep(0.05)
    raise AssertionError("serve did not print its banner on stdout")
