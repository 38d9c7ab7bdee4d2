"""Network probes: separate TLS handshakes and HTTP requests, each returning plain data.

Probes run in threads with blocking sockets: every socket operation gets the time left until the
one overall deadline, and Python's ssl releases the GIL during handshakes, so they overlap fully.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from tcwebhook import protocol
from tcwebhook.errors import TlsCheckError
from tcwebhook.trust import client_context

TLS_VERSIONS: dict[str, ssl.TLSVersion] = {
    "TLS 1.0": ssl.TLSVersion.TLSv1,
    "TLS 1.1": ssl.TLSVersion.TLSv1_1,
    "TLS 1.2": ssl.TLSVersion.TLSv1_2,
    "TLS 1.3": ssl.TLSVersion.TLSv1_3,
}

# Security level 0 lets the probing client speak to anything (SHA-1 signatures, small keys, old
# protocols): probes measure what the server offers, the rules judge it.
PERMISSIVE_CIPHERS = "ALL:COMPLEMENTOFALL:@SECLEVEL=0"


@dataclass(frozen=True)
class Address:
    """Where to connect (resolved once, so every probe reaches the same server)."""

    family: int
    sockaddr: tuple[str, int] | tuple[str, int, int, int]
    host: str
    port: int

    def with_port(self, port: int) -> Address:
        return Address(self.family, (self.sockaddr[0], port, *self.sockaddr[2:]), self.host, port)


@dataclass(frozen=True)
class HandshakeResult:
    """One TLS handshake attempt."""

    connected: bool
    accepted: bool
    version: str | None = None
    cipher: str | None = None
    chain: tuple[bytes, ...] = ()
    error: str | None = None
    verify_code: int | None = None
    verify_message: str | None = None
    timed_out: bool = False


@dataclass(frozen=True)
class HttpResult:
    """One HTTP request: the status, or why there was none."""

    status: int | None = None
    reason: str = ""
    location: str | None = None
    www_authenticate: str | None = None  # the challenge of a 401: which scheme it asks for
    error: str | None = None
    refused: bool = False
    timed_out: bool = False
    tls_error: str | None = None
    verify_failed: bool = False


@dataclass(frozen=True)
class Credentials:
    token: str | None = field(default=None, repr=False)
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    def header(self) -> str | None:
        """The Authorization header value Tradecloud would send, or None without credentials."""
        if self.token:
            return protocol.bearer_header(self.token)
        if self.user is not None:
            return protocol.basic_header(self.user, self.password or "")
        return None


class Deadline:
    """One deadline shared by every probe."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.01, self.at - time.monotonic())


def resolve(host: str, port: int, deadline: Deadline) -> Address:
    """The first address of ``host`` that accepts a TCP connection (as browsers and the JVM do).

    Resolving and connecting once up front gives every probe the same server and turns an
    unreachable host into one clear error instead of a column of failed probes.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise TlsCheckError(
            f"could not check: cannot resolve host {host!r} ({exc.strerror}); check the spelling "
            "and your DNS"
        ) from exc
    last_error: OSError | None = None
    for family, _, _, _, sockaddr in infos:
        address = Address(family, sockaddr, host, port)  # type: ignore[arg-type]
        try:
            connect(address, deadline).close()
        except OSError as exc:
            last_error = exc
            continue
        return address
    assert last_error is not None
    raise connection_error(Address(infos[0][0], infos[0][4], host, port), last_error, deadline)  # type: ignore[arg-type]


def connect(address: Address, deadline: Deadline) -> socket.socket:
    sock = socket.socket(address.family, socket.SOCK_STREAM)
    sock.settimeout(deadline.remaining())
    try:
        sock.connect(address.sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock


def connection_error(address: Address, exc: OSError, deadline: Deadline) -> TlsCheckError:
    """The one-line reason a TCP connection could not be made."""
    where = f"{address.host}:{address.port}"
    if isinstance(exc, TimeoutError | socket.timeout):
        return TlsCheckError(
            f"could not check: timed out after {deadline.seconds:g} s connecting to {where}; "
            "check the host, port and firewall, or raise --timeout"
        )
    if isinstance(exc, ConnectionRefusedError):
        return TlsCheckError(
            f"could not check: connection refused to {where}; is the server running and "
            "listening on that port?"
        )
    return TlsCheckError(f"could not check: cannot connect to {where}: {exc.strerror or exc}")


def probe_context(
    version: ssl.TLSVersion | None = None, ciphers: str | None = None
) -> ssl.SSLContext:
    """A client context that verifies nothing and accepts anything the server may offer."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        # Python deprecates TLS 1.0/1.1; probing whether a server still accepts them is the point.
        warnings.simplefilter("ignore", DeprecationWarning)
        if version is not None:
            context.minimum_version = version
            context.maximum_version = version
        else:
            context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(ciphers or PERMISSIVE_CIPHERS)
    return context


def verifying_context(ca_file: Path | None) -> ssl.SSLContext:
    """What Tradecloud's sender does: system trust store (+ CA file), hostname check, TLS ≥ 1.2."""
    return client_context(ca_file)


def handshake(
    address: Address, sni: str | None, context: ssl.SSLContext, deadline: Deadline
) -> HandshakeResult:
    """Connect and complete one TLS handshake; report what was negotiated and the chain sent."""
    try:
        sock = connect(address, deadline)
    except OSError as exc:
        return HandshakeResult(
            connected=False,
            accepted=False,
            error=str(connection_error(address, exc, deadline)),
            timed_out=isinstance(exc, TimeoutError),
        )
    try:
        with context.wrap_socket(sock, server_hostname=sni) as tls:
            cipher = tls.cipher()
            return HandshakeResult(
                connected=True,
                accepted=True,
                version=tls.version(),
                cipher=cipher[0] if cipher else None,
                chain=sent_chain(tls),
            )
    except ssl.SSLCertVerificationError as exc:
        return HandshakeResult(
            connected=True,
            accepted=False,
            error=exc.verify_message or str(exc),
            verify_code=exc.verify_code,
            verify_message=exc.verify_message,
        )
    except TimeoutError:
        return HandshakeResult(connected=True, accepted=False, error="timed out", timed_out=True)
    except (ssl.SSLError, OSError) as exc:
        return HandshakeResult(connected=True, accepted=False, error=_ssl_reason(exc))
    finally:
        sock.close()


def sent_chain(tls: ssl.SSLSocket) -> tuple[bytes, ...]:
    """The certificates exactly as the server sent them, in its order (DER).

    Python 3.13 has SSLSocket.get_unverified_chain(); 3.10-3.12 have the same call, unpublished,
    on the underlying _ssl object. The alternatives were pyOpenSSL (another dependency) or parsing
    the Certificate message ourselves (impossible for TLS 1.3, where it is encrypted).
    """
    getter = getattr(tls, "get_unverified_chain", None)
    if getter is None:
        getter = tls._sslobj.get_unverified_chain  # type: ignore[attr-defined]
    chain = getter() or []
    return tuple(
        item if isinstance(item, bytes) else item.public_bytes(ssl._ssl.ENCODING_DER)  # type: ignore[attr-defined]
        for item in chain
    )


def _ssl_reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    if reason:
        return str(reason).lower().replace("_", " ")
    if isinstance(exc, ConnectionResetError):
        return "connection reset by the server"
    return str(exc) or type(exc).__name__


def post_empty_json(
    address: Address,
    host_header: str,
    path: str,
    deadline: Deadline,
    context: ssl.SSLContext | None,
    sni: str | None = None,
    authorization: str | None = None,
) -> HttpResult:
    """POST ``{}`` as Tradecloud would (JSON, optional Authorization) and return the status.

    The request goes out in one write, so a server that answers 401 after reading only the
    headers and closes does not reset the connection before its answer is read.
    """
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host_header}",
        "User-Agent: tcwebhook-check-tls",
        "Content-Type: application/json",
        "Content-Length: 2",
        "Connection: close",
    ]
    if authorization:
        lines.append(f"Authorization: {authorization}")
    request = ("\r\n".join(lines) + "\r\n\r\n{}").encode("latin-1")
    sock: socket.socket | None = None
    try:
        sock = connect(address, deadline)
        if context is not None:
            sock = context.wrap_socket(sock, server_hostname=sni)
        sock.sendall(request)
        response = http.client.HTTPResponse(sock, method="POST")
        response.begin()
        return HttpResult(
            status=response.status,
            reason=response.reason,
            location=response.getheader("Location"),
            www_authenticate=response.getheader("WWW-Authenticate"),
        )
    except ssl.SSLCertVerificationError as exc:
        return HttpResult(tls_error=exc.verify_message or str(exc), verify_failed=True)
    except ssl.SSLError as exc:
        return HttpResult(tls_error=_ssl_reason(exc))
    except ConnectionRefusedError:
        return HttpResult(refused=True, error="connection refused")
    except TimeoutError:
        return HttpResult(timed_out=True, error="timed out")
    except (OSError, http.client.HTTPException) as exc:
        return HttpResult(error=_ssl_reason(exc))
    finally:
        if sock is not None:
            sock.close()
