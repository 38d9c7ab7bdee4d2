"""Benchmark: how long does `check-tls` take against a local TLS server?

Starts a TLS 1.2/1.3 server on 127.0.0.1 (trustme CA, answers 401 to every request), runs the
full check N times and prints the median, minimum and maximum wall time.

    python bench/check_tls.py [--runs 20]
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import ssl
import statistics
import tempfile
import threading
import time
from pathlib import Path

import trustme

from tcwebhook.tlscheck import CheckOptions, check_tls


def serve(context: ssl.SSLContext) -> int:
    listener = socket.create_server(("127.0.0.1", 0), backlog=128)

    def answer(connection: socket.socket) -> None:
        with contextlib.suppress(OSError), context.wrap_socket(connection, server_side=True) as tls:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = tls.recv(65536)
                if not chunk:
                    return
                request += chunk
            tls.sendall(
                b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )

    def accept_forever() -> None:
        while True:
            connection, _ = listener.accept()
            threading.Thread(target=answer, args=(connection,), daemon=True).start()

    threading.Thread(target=accept_forever, daemon=True).start()
    return listener.getsockname()[1]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    arguments = parser.parse_args()

    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    port = serve(context)
    with tempfile.TemporaryDirectory() as directory:
        ca_file = Path(directory) / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        options = CheckOptions(ca_file=ca_file, http_port=closed_port())
        url = f"https://127.0.0.1:{port}/webhook"
        check_tls(url, options)  # warm-up: imports, trust store read
        timings = []
        for _ in range(arguments.runs):
            started = time.perf_counter()
            report = check_tls(url, options)
            timings.append(time.perf_counter() - started)
    print(f"check-tls against {url} (verdict {report.verdict}), {arguments.runs} runs:")
    print(
        f"  median {statistics.median(timings) * 1000:.1f} ms, "
        f"min {min(timings) * 1000:.1f} ms, max {max(timings) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
