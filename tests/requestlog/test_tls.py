"""Failed TLS handshakes, translated: real handshakes on loopback against a Python ``ssl`` server
with a trustme certificate, the server-side exception captured and explained."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import trustme

from tcwebhook.requestlog import (
    NOT_VISIBLE_BEHIND_PROXY,
    explain_handshake,
    handshake_record,
    name_covered,
)
from tcwebhook.requestlog.tls import openssl_reason
from tests.helpers.tls import legacy_client_context

CERT_NAMES = ("localhost", "127.0.0.1")
Client = Callable[[int], None]


@dataclass
class Handshake:
    error: BaseException | None
    server_name: str | None


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def chain_files(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    leaf = ca.issue_cert(*CERT_NAMES)
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    key.write_bytes(leaf.private_key_pem.bytes())
    return str(cert), str(key)


@pytest.fixture
def handshake(chain_files: tuple[str, str]) -> Iterator[Callable[[Client], Handshake]]:
    """Runs ``client`` against a one-connection server; what the server side saw."""
    listeners: list[socket.socket] = []

    def run(client: Client) -> Handshake:
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)
        seen: dict[str, str | None] = {}
        errors: list[BaseException | None] = []

        def remember(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
            seen["name"] = name

        # One context per test so the SNI callback sees only this test's handshake.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2  # as the receiver's
        context.sni_callback = remember  # type: ignore[assignment]
        context.load_cert_chain(*chain_files)

        def serve() -> None:
            connection, _ = listener.accept()
            connection.settimeout(10)
            try:
                context.wrap_socket(connection, server_side=True).close()
                errors.append(None)
            except BaseException as exc:
                errors.append(exc)
                connection.close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        # The client's side of a failed handshake is not under test.
        with contextlib.suppress(OSError, ssl.SSLError):
            client(listener.getsockname()[1])
        thread.join(timeout=30)
        assert errors, "the server saw no connection"
        return Handshake(errors[0], seen.get("name"))

    yield run
    for listener in listeners:
        listener.close()


def tls_client(context: ssl.SSLContext, server_name: str | None = "localhost") -> Client:
    def connect(port: int) -> None:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=server_name) as tls,
        ):
            tls.sendall(b"GET / HTTP/1.1\r\n\r\n")

    return connect


def raw_client(data: bytes) -> Client:
    def connect(port: int) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(data)
            raw.recv(1024)

    return connect


def alerting_client(description: int, server_name: str | None = "localhost") -> Client:
    """A client that reads our certificate, then answers with a fatal alert of its own choice,
    as a Java client does when it rejects the certificate (Python's ssl cannot send one)."""

    def connect(port: int) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        context.maximum_version = ssl.TLSVersion.TLSv1_2  # the alert travels in plaintext
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        client = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
        with pytest.raises(ssl.SSLWantReadError):
            client.do_handshake()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(outgoing.read())  # ClientHello
            raw.recv(65536)  # ServerHello, Certificate, …
            raw.sendall(bytes([21, 3, 3, 0, 2, 2, description]))

    return connect


def explained(seen: Handshake) -> tuple[str, str, str]:
    assert seen.error is not None, "the handshake succeeded"
    failure = explain_handshake(
        seen.error, server_name=seen.server_name, certificate_names=CERT_NAMES
    )
    assert failure.tradecloud == "unknown"
    return failure.code, failure.reason, failure.fix


# ---- the four scenarios of the issue --------------------------------------------------------


def test_a_client_that_does_not_trust_the_ca_is_told_to_serve_a_trusted_chain(
    handshake: Callable[[Client], Handshake],
) -> None:
    untrusting = ssl.create_default_context()  # the system's CAs: not our throwaway CA
    seen = handshake(tls_client(untrusting))
    assert openssl_reason(seen.error or Exception()) == "TLSV1_ALERT_UNKNOWN_CA"
    code, reason, fix = explained(seen)
    assert code == "unknown_ca"
    assert "does not trust the issuer" in reason and "self-signed" in reason
    assert "intermediate" in fix and "server.tls.cert" in fix


def test_a_client_offering_only_tls_1_1_has_no_shared_protocol_version(
    handshake: Callable[[Client], Handshake],
) -> None:
    seen = handshake(tls_client(legacy_client_context(ssl.TLSVersion.TLSv1_1)))
    code, reason, fix = explained(seen)
    assert code == "protocol_version"
    assert "older than 1.2" in reason
    assert "TLS 1.2" in fix


def test_plain_http_on_the_https_port_is_recognised(
    handshake: Callable[[Client], Handshake],
) -> None:
    seen = handshake(raw_client(b"POST /tradecloud/order HTTP/1.1\r\nHost: x\r\n\r\n"))
    code, reason, fix = explained(seen)
    assert code == "plain_http"
    assert reason == "plain HTTP was sent to the HTTPS port"
    assert "https://" in fix


def test_a_wrong_server_name_is_a_name_the_certificate_does_not_cover(
    handshake: Callable[[Client], Handshake], ca: trustme.CA
) -> None:
    verifying = ssl.create_default_context()
    ca.configure_trust(verifying)
    seen = handshake(tls_client(verifying, "wrong.example"))
    assert seen.server_name == "wrong.example"
    code, reason, fix = explained(seen)
    assert code == "name_mismatch"
    assert "wrong.example" in reason and "does not cover" in reason
    assert "host name of the webhook URL" in fix


def test_a_verifying_client_with_the_right_name_completes_the_handshake(
    handshake: Callable[[Client], Handshake], ca: trustme.CA
) -> None:
    verifying = ssl.create_default_context()
    ca.configure_trust(verifying)
    assert handshake(tls_client(verifying, "localhost")).error is None


# ---- what a Java client sends, and the rest ----------------------------------------------


def test_certificate_unknown_says_it_cannot_tell_chain_from_name(
    handshake: Callable[[Client], Handshake],
) -> None:
    seen = handshake(alerting_client(46, server_name=None))  # Java sends no SNI for an IP
    assert openssl_reason(seen.error or Exception()) == "SSLV3_ALERT_CERTIFICATE_UNKNOWN"
    code, reason, fix = explained(seen)
    assert code == "certificate_unknown"
    assert "Java" in reason and "incomplete chain" in reason and "name" in reason
    assert "no server name (SNI)" in reason
    assert "intermediate" in fix and "host name" in fix


def test_certificate_unknown_with_a_name_not_covered_is_the_name(
    handshake: Callable[[Client], Handshake],
) -> None:
    seen = handshake(alerting_client(46, server_name="erp.example.com"))
    code, reason, _fix = explained(seen)
    assert code == "name_mismatch"
    assert "erp.example.com" in reason and "certificate_unknown" in reason


def test_certificate_unknown_with_a_covered_name_stays_ambiguous(
    handshake: Callable[[Client], Handshake],
) -> None:
    code, reason, _fix = explained(handshake(alerting_client(46, server_name="localhost")))
    assert code == "certificate_unknown"
    assert "the server name localhost" in reason


@pytest.mark.parametrize(
    ("description", "code"),
    [(45, "certificate_expired"), (48, "unknown_ca"), (112, "name_mismatch"), (51, "corrupt")],
)
def test_alerts_from_the_client_are_named(
    handshake: Callable[[Client], Handshake], description: int, code: str
) -> None:
    assert explained(handshake(alerting_client(description)))[0] == code


def test_no_shared_cipher(handshake: Callable[[Client], Handshake]) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("aNULL:@SECLEVEL=0")  # anonymous suites only: no server accepts them
    code, reason, _fix = explained(handshake(tls_client(context)))
    assert code == "no_shared_cipher"
    assert "no shared cipher suite" in reason


def test_a_port_check_that_connects_and_closes(handshake: Callable[[Client], Handshake]) -> None:
    def connect_and_close(port: int) -> None:
        socket.create_connection(("127.0.0.1", port), timeout=10).close()

    code, reason, _fix = explained(handshake(connect_and_close))
    assert code == "closed"
    assert "without an alert" in reason


def test_bytes_that_are_not_tls(handshake: Callable[[Client], Handshake]) -> None:
    code, _reason, _fix = explained(handshake(raw_client(b"\x00\x01 not a handshake\r\n" * 4)))
    assert code == "not_tls"


# ---- pure parts ---------------------------------------------------------------------------


def test_a_timeout_and_an_unknown_reason_are_worded_too() -> None:
    assert explain_handshake(TimeoutError()).code == "timeout"
    error = ssl.SSLError(1, "[SSL: SOMETHING_NEW\x1b[2J] odd")
    failure = explain_handshake(error)
    assert failure.code == "other"
    assert "\x1b" not in failure.reason


def test_the_reason_is_read_from_the_message_when_the_attribute_is_missing() -> None:
    error = ssl.SSLError(1, "[SSL: HTTP_REQUEST] http request (_ssl.c:1006)")
    assert openssl_reason(error) == "HTTP_REQUEST"
    assert explain_handshake(error).code == "plain_http"


def test_a_refused_client_certificate_quotes_openssl_s_verify_message() -> None:
    error = ssl.SSLCertVerificationError(
        1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate"
    )
    error.verify_message = "self-signed certificate\x1b[2J"
    failure = explain_handshake(error)
    assert failure.code == "client_certificate"
    assert "self-signed certificate" in failure.reason and "\x1b" not in failure.reason


def test_a_hostile_server_name_is_escaped() -> None:
    error = ssl.SSLError(1, "[SSL: SSLV3_ALERT_BAD_CERTIFICATE] bad")
    failure = explain_handshake(
        error, server_name="evil\x1b[31m.example", certificate_names=CERT_NAMES
    )
    assert failure.code == "name_mismatch"
    assert "\x1b" not in failure.reason and "\\x1b" in failure.reason


@pytest.mark.parametrize(
    ("name", "names", "covered"),
    [
        ("erp.example.com", ("*.example.com",), True),
        ("ERP.Example.com.", ("*.example.com",), True),
        ("example.com", ("*.example.com",), False),
        ("a.b.example.com", ("*.example.com",), False),
        ("erp.example.com", ("erp.example.org", "127.0.0.1"), False),
        ("127.0.0.1", ("localhost", "127.0.0.1"), True),
        ("::1", ("0:0:0:0:0:0:0:1",), True),
        ("127.0.0.1", ("*.0.0.1",), False),
    ],
)
def test_name_covered(name: str, names: tuple[str, ...], covered: bool) -> None:
    assert name_covered(name, names) is covered


def test_a_handshake_record_has_no_request_and_an_unknown_reaction() -> None:
    failure = explain_handshake(ssl.SSLError(1, "[SSL: UNSUPPORTED_PROTOCOL] x"))
    record = handshake_record(failure, time="2026-12-07T01:00:00.000Z", client="10.0.0.1",
                              duration_ms=3.0)  # fmt: skip
    data = record.to_json()
    assert (data["kind"], data["status"], data["method"], data["path"]) == ("tls", None, None, None)
    assert data["tradecloud"] == "unknown"
    assert data["reason"] == failure.reason and data["fix"] == failure.fix


def test_behind_a_proxy_the_reason_says_failures_are_not_seen() -> None:
    assert "server.tls is false" in NOT_VISIBLE_BEHIND_PROXY
    assert "proxy" in NOT_VISIBLE_BEHIND_PROXY
