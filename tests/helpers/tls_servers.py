"""TLS servers on 127.0.0.1 for the check-tls scenarios.

Each server is a thread that completes handshakes and answers every HTTP request with a fixed
status (or one computed from the request's headers).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers.pki import Issued


@dataclass
class Server:
    port: int
    requests: list[dict[str, str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/webhook"


StatusFor = Callable[[dict[str, str]], int]


class Servers:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.sockets: list[socket.socket] = []
        self.count = 0

    def start(
        self,
        leaf: Issued,
        chain: tuple[Issued, ...] = (),
        minimum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
        maximum: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED,
        ciphers: str = "DEFAULT",
        status: int | StatusFor = 401,
    ) -> Server:
        self.count += 1
        cert_file = self.directory / f"server{self.count}.pem"
        cert_file.write_bytes(leaf.pem + b"".join(item.pem for item in chain))
        key_file = self.directory / f"server{self.count}.key"
        key_file.write_bytes(leaf.key_pem)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0/1.1 on purpose
            context.minimum_version = minimum
            context.maximum_version = maximum
        # Security level 0 so that the server can use the weak keys and protocols under test.
        context.set_ciphers(f"{ciphers}:@SECLEVEL=0")
        context.load_cert_chain(cert_file, key_file)
        listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.sockets.append(listener)
        server = Server(listener.getsockname()[1])
        status_for: StatusFor = status if callable(status) else (lambda _headers: status)
        thread = threading.Thread(
            target=_serve, args=(listener, context, server, status_for), daemon=True
        )
        thread.start()
        return server

    def close(self) -> None:
        for listener in self.sockets:
            listener.close()


def _serve(
    listener: socket.socket, context: ssl.SSLContext, server: Server, status_for: StatusFor
) -> None:
    while True:
        try:
            connection, _ = listener.accept()
        except OSError:
            return  # listener closed at teardown
        threading.Thread(
            target=_answer, args=(connection, context, server, status_for), daemon=True
        ).start()


def _answer(
    connection: socket.socket, context: ssl.SSLContext, server: Server, status_for: StatusFor
) -> None:
    connection.settimeout(5)
    try:
        with context.wrap_socket(connection, server_side=True) as tls:
            headers = _read_request(tls)
            if headers is None:
                return
            server.requests.append(headers)
            status = status_for(headers)
            tls.sendall(
                f"HTTP/1.1 {status} Test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
            )
            with contextlib.suppress(OSError, ssl.SSLError):
                tls.unwrap()
    except (OSError, ssl.SSLError):
        pass  # refused handshakes are the point of many scenarios
    finally:
        connection.close()


def _read_request(tls: ssl.SSLSocket) -> dict[str, str] | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = tls.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {"request-line": lines[0]}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = tls.recv(65536)
        if not chunk:
            break
        body += chunk
    headers["body"] = body.decode("utf-8", "replace")
    return headers
