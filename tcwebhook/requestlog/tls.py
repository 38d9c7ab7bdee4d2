"""A TLS handshake that failed, for a person: what the client's alert (or OpenSSL's own error)
means, and the fix. Pure: the receiver hands over the exception Python's ``ssl`` module raised on
the server side, and the server name the client asked for (SNI), when it sent one.

A TLS alert tells less than one would like. The codes below say as much as it does, no more: a Java
client, as Tradecloud's sender is, answers ``certificate_unknown`` for an untrusted or incomplete
chain and for a name the certificate does not cover alike; OpenSSL clients say ``unknown_ca`` for
the first and ``bad_certificate`` for the second. What Tradecloud does after a failed handshake is
not documented, so every record says ``tradecloud: unknown``.
"""

from __future__ import annotations

import ipaddress
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

from tcwebhook.console import printable
from tcwebhook.requestlog.records import RequestRecord, Tradecloud

# Shown where TLS failures would be listed when the receiver does not terminate TLS itself.
NOT_VISIBLE_BEHIND_PROXY = (
    "server.tls is false: the reverse proxy terminates TLS, so failed handshakes never reach "
    "this receiver and cannot be recorded here; look in the proxy's error log"
)

_CHAIN_FIX = (
    "serve a certificate from a publicly trusted CA (Let's Encrypt or a commercial CA) and put "
    "the whole chain — the certificate, then every intermediate — in the file of "
    "server.tls.cert; a self-signed or development certificate is rejected by Tradecloud; "
    "`tcwebhook check-tls` shows what is missing"
)
_NAME_FIX = (
    "the certificate must cover the host name of the webhook URL in the Tradecloud portal: "
    "get one for that name (or a wildcard for its domain), or correct the URL; "
    "`tcwebhook check-tls` shows the names the certificate covers"
)
_JAVA_NOTE = (
    "a Java client (as Tradecloud's sender is) sends this one alert for an untrusted or "
    "incomplete chain and for a name the certificate does not cover alike"
)


@dataclass(frozen=True)
class HandshakeFailure:
    """A failed handshake for a person; ``code`` is a fixed word (usable as a metric label)."""

    code: str
    reason: str
    fix: str
    tradecloud: Tradecloud = "unknown"


def explain_handshake(
    error: BaseException,
    *,
    server_name: str | None = None,
    certificate_names: Sequence[str] = (),
) -> HandshakeFailure:
    """What a server-side handshake failure means.

    ``server_name``: the SNI name the client sent (None: none); ``certificate_names``: the DNS
    names and IP addresses the receiver's certificate covers, to tell a name mismatch apart.
    """
    if isinstance(error, TimeoutError):
        return _failure(
            "timeout",
            "the client did not complete the TLS handshake within server.limits.head_timeout",
            "a very slow or idle client (or one holding connections open on purpose); "
            "Tradecloud completes its handshake at once",
        )
    alert = openssl_reason(error)
    if alert is None:
        if isinstance(error, ssl.SSLEOFError | ConnectionError | EOFError):
            return _closed()
        return _failure(
            "other",
            f"the TLS handshake failed ({printable(type(error).__name__, limit=60)})",
            "run `tcwebhook check-tls` against this receiver to see what a client meets",
        )
    translate = _BY_REASON.get(alert)
    if translate is None:
        return _failure(
            "other",
            f"the TLS handshake failed (OpenSSL: {printable(alert.lower(), limit=80)})",
            "run `tcwebhook check-tls` against this receiver to see what a client meets",
        )
    return translate(_Context(server_name, tuple(certificate_names), error))


def openssl_reason(error: BaseException) -> str | None:
    """OpenSSL's reason code of an ``ssl.SSLError`` (``TLSV1_ALERT_UNKNOWN_CA``), if any."""
    if not isinstance(error, ssl.SSLError):
        return None
    reason = getattr(error, "reason", None)
    if isinstance(reason, str) and reason:
        return reason.upper()
    # Some builds leave ``reason`` unset; the message still reads "[SSL: CODE] text".
    match = re.search(r"\[SSL: ([A-Z0-9_]+)\]", str(error))
    return match.group(1) if match else None


def name_covered(name: str, certificate_names: Sequence[str]) -> bool:
    """Whether a certificate for ``certificate_names`` (DNS names and IP addresses) covers
    ``name`` as a TLS client checks it: one wildcard, in the left-most label only."""
    wanted = name.strip().rstrip(".").lower()
    try:
        wanted_ip = ipaddress.ip_address(wanted)
    except ValueError:
        wanted_ip = None
    for entry in certificate_names:
        covered = entry.strip().rstrip(".").lower()
        if wanted_ip is not None:
            try:
                if ipaddress.ip_address(covered) == wanted_ip:
                    return True
            except ValueError:
                pass
            continue
        if covered == wanted:
            return True
        if covered.startswith("*.") and "." in wanted:
            head, _, rest = wanted.partition(".")
            if head and rest == covered[2:]:
                return True
    return False


def handshake_record(
    failure: HandshakeFailure, *, time: str, client: str | None, duration_ms: float | None
) -> RequestRecord:
    """The request-log record of a failed handshake: no method, path or status (no request)."""
    return RequestRecord(
        time=time,
        method=None,
        path=None,
        status=None,
        reason=failure.reason,
        fix=failure.fix,
        duration_ms=duration_ms,
        client=None if client is None else printable(client, limit=64),
        tradecloud=failure.tradecloud,
        kind="tls",
    )


# ---- the translations ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    server_name: str | None
    certificate_names: tuple[str, ...]
    error: BaseException

    @property
    def name_not_covered(self) -> bool:
        return (
            self.server_name is not None
            and bool(self.certificate_names)
            and not name_covered(self.server_name, self.certificate_names)
        )

    @property
    def sni(self) -> str:
        if self.server_name is None:
            return "no server name (SNI): it connects by IP address or a name without a dot"
        return f"the server name {printable(self.server_name, limit=100)}"


def _failure(code: str, reason: str, fix: str) -> HandshakeFailure:
    return HandshakeFailure(code, reason, fix)


def _name_mismatch(context: _Context, alert: str) -> HandshakeFailure:
    return _failure(
        "name_mismatch",
        f"the client rejected our certificate (alert {alert}): it asked for {context.sni}, "
        "which the certificate does not cover",
        _NAME_FIX,
    )


def _unknown_ca(context: _Context) -> HandshakeFailure:
    return _failure(
        "unknown_ca",
        "the client rejected our certificate (alert unknown_ca): it does not trust the issuer — "
        "a self-signed or development certificate, or a chain without its intermediate",
        _CHAIN_FIX,
    )


def _certificate_unknown(context: _Context) -> HandshakeFailure:
    if context.name_not_covered:
        return _name_mismatch(context, "certificate_unknown")
    return _failure(
        "certificate_unknown",
        "the client rejected our certificate without saying why (alert certificate_unknown; "
        f"it sent {context.sni}): {_JAVA_NOTE}",
        f"{_CHAIN_FIX}; and {_NAME_FIX}",
    )


def _bad_certificate(context: _Context) -> HandshakeFailure:
    if context.name_not_covered:
        return _name_mismatch(context, "bad_certificate")
    return _failure(
        "bad_certificate",
        "the client rejected our certificate as bad (alert bad_certificate; it sent "
        f"{context.sni}): OpenSSL clients say so for a name the certificate does not cover, "
        "others for a broken signature or a certificate not valid yet",
        f"{_NAME_FIX}; if the name is right, renew the certificate",
    )


def _expired(context: _Context) -> HandshakeFailure:
    return _failure(
        "certificate_expired",
        "the client rejected our certificate as expired (alert certificate_expired)",
        "renew the certificate and reload the receiver (SIGHUP); `tcwebhook check-tls` shows "
        "the dates — an expired intermediate in the chain counts too",
    )


def _revoked(context: _Context) -> HandshakeFailure:
    return _failure(
        "certificate_revoked",
        "the client rejected our certificate as revoked (alert certificate_revoked)",
        "get a new certificate from the CA and reload the receiver (SIGHUP)",
    )


def _unsupported_certificate(context: _Context) -> HandshakeFailure:
    return _failure(
        "unsupported_certificate",
        "the client cannot use our certificate (alert unsupported_certificate): a key usage it "
        "does not accept or a weak algorithm",
        "get a certificate for TLS server authentication with an RSA (2048 bits or more) or "
        "ECDSA P-256 key; `tcwebhook check-tls` names the problem",
    )


def _unrecognized_name(context: _Context) -> HandshakeFailure:
    return _failure(
        "name_mismatch",
        f"the handshake failed on the server name (unrecognized_name): it asked for {context.sni}",
        _NAME_FIX,
    )


def _protocol_version(context: _Context) -> HandshakeFailure:
    return _failure(
        "protocol_version",
        "no shared protocol version: the client offers only TLS older than 1.2, which this "
        "receiver refuses",
        "Tradecloud sends with TLS 1.2 or 1.3, so this client is not Tradecloud: update it "
        "(an old monitor, scanner or library) to TLS 1.2",
    )


def _plain_http(context: _Context) -> HandshakeFailure:
    return _failure(
        "plain_http",
        "plain HTTP was sent to the HTTPS port",
        "use https:// in the URL (the Tradecloud portal requires it); a health check or proxy "
        "must speak TLS to this port, or terminate TLS itself with server.tls: false",
    )


def _proxy_connect(context: _Context) -> HandshakeFailure:
    return _failure(
        "plain_http",
        "a proxy CONNECT request was sent to the HTTPS port",
        "this port is the webhook receiver, not a proxy: correct the client's proxy settings",
    )


def _not_tls(context: _Context) -> HandshakeFailure:
    return _failure(
        "not_tls",
        "the client did not speak TLS (the first bytes are no TLS handshake, or SSL 2/3)",
        "a port scanner or another protocol; a real client must use https:// and TLS 1.2+",
    )


def _no_shared_cipher(context: _Context) -> HandshakeFailure:
    return _failure(
        "no_shared_cipher",
        "no shared cipher suite, curve or signature algorithm: the client offers only ones "
        "this receiver does not accept",
        "Tradecloud's sender uses current TLS 1.2/1.3 suites, so this is an outdated client: "
        "update it; `tcwebhook check-tls` lists what the receiver offers",
    )


def _handshake_failure(context: _Context) -> HandshakeFailure:
    return _failure(
        "no_shared_cipher",
        "the client found no acceptable parameters (alert handshake_failure): no cipher suite, "
        "curve or signature algorithm it accepts, e.g. an RSA-only client and an ECDSA "
        "certificate",
        "compare the client's TLS settings with `tcwebhook check-tls`; an RSA certificate "
        "suits the widest range of clients",
    )


def _closed(context: _Context | None = None) -> HandshakeFailure:
    return _failure(
        "closed",
        "the client closed the connection during the TLS handshake, without an alert",
        "a port check (load balancer, monitor, scanner) or a client that gave up; a client that "
        "rejected our certificate without an alert looks the same: try `tcwebhook check-tls`",
    )


def _client_certificate(context: _Context) -> HandshakeFailure:
    # Only where the server asks for a client certificate: then OpenSSL says what it found.
    message = getattr(context.error, "verify_message", None) or "it could not be verified"
    return _failure(
        "client_certificate",
        f"the client's certificate was refused: {printable(message, limit=120)}",
        "the client must present a certificate from a CA this receiver trusts",
    )


def _corrupt(context: _Context) -> HandshakeFailure:
    return _failure(
        "corrupt",
        "the handshake's messages were damaged or could not be decrypted",
        "something between the client and this receiver alters the bytes (a proxy or a "
        "middlebox): connect directly to compare",
    )


def _no_alpn(context: _Context) -> HandshakeFailure:
    return _failure(
        "no_application_protocol",
        "no shared application protocol (ALPN): the client insists on one this receiver does "
        "not speak",
        "let the client use HTTP/1.1",
    )


_BY_REASON = {
    "TLSV1_ALERT_UNKNOWN_CA": _unknown_ca,
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": _certificate_unknown,
    "SSLV3_ALERT_BAD_CERTIFICATE": _bad_certificate,
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": _expired,
    "SSLV3_ALERT_CERTIFICATE_REVOKED": _revoked,
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": _unsupported_certificate,
    "TLSV1_UNRECOGNIZED_NAME": _unrecognized_name,
    "TLSV1_ALERT_UNRECOGNIZED_NAME": _unrecognized_name,
    "UNSUPPORTED_PROTOCOL": _protocol_version,
    "TLSV1_ALERT_PROTOCOL_VERSION": _protocol_version,
    "VERSION_TOO_LOW": _protocol_version,
    "NO_PROTOCOLS_AVAILABLE": _protocol_version,
    "TLSV1_ALERT_INAPPROPRIATE_FALLBACK": _protocol_version,
    "HTTP_REQUEST": _plain_http,
    "HTTPS_PROXY_REQUEST": _proxy_connect,
    "WRONG_VERSION_NUMBER": _not_tls,
    "UNKNOWN_PROTOCOL": _not_tls,
    "PACKET_LENGTH_TOO_LONG": _not_tls,
    "RECORD_LENGTH_MISMATCH": _not_tls,
    "UNEXPECTED_MESSAGE": _not_tls,
    "UNEXPECTED_RECORD": _not_tls,
    "NO_SHARED_CIPHER": _no_shared_cipher,
    "NO_SHARED_GROUPS": _no_shared_cipher,
    "NO_SUITABLE_SIGNATURE_ALGORITHM": _no_shared_cipher,
    "TLSV1_ALERT_INSUFFICIENT_SECURITY": _no_shared_cipher,
    "SSLV3_ALERT_HANDSHAKE_FAILURE": _handshake_failure,
    "UNEXPECTED_EOF_WHILE_READING": _closed,
    "CERTIFICATE_VERIFY_FAILED": _client_certificate,
    "TLSV1_ALERT_DECRYPT_ERROR": _corrupt,
    "TLSV1_ALERT_DECODE_ERROR": _corrupt,
    "DECRYPTION_FAILED_OR_BAD_RECORD_MAC": _corrupt,
    "SSLV3_ALERT_BAD_RECORD_MAC": _corrupt,
    "TLSV1_ALERT_NO_APPLICATION_PROTOCOL": _no_alpn,
    "NO_APPLICATION_PROTOCOL": _no_alpn,
}
