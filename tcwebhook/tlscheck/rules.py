"""Tradecloud's TLS rules as pure functions: probe results and certificates in, report rows out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tcwebhook import protocol
from tcwebhook.tlscheck import certs
from tcwebhook.tlscheck.hostname import certificate_names, matches
from tcwebhook.tlscheck.probes import HandshakeResult, HttpResult
from tcwebhook.tlscheck.report import Check, Status
from tcwebhook.tlscheck.trust import TrustStore

JVM_NOTE = (
    "browsers may hide this by fetching the missing certificate (AIA) or using a cached one, "
    "but Tradecloud's JVM sender never fetches it and will fail"
)
FULL_CHAIN_FIX = (
    "serve the full chain: your certificate followed by the intermediate certificate(s) your CA "
    "gave you (e.g. fullchain.pem for nginx ssl_certificate, SSLCertificateFile on Apache 2.4.8+)"
)
WEAK_HASHES = {"md2", "md5", "sha1"}


# ---------------------------------------------------------------------------------------------
# Protocols


def protocols_check(results: Mapping[str, HandshakeResult]) -> Check:
    accepted = [version for version, result in results.items() if result.accepted]
    modern = [version for version in ("TLS 1.2", "TLS 1.3") if version in accepted]
    legacy = [version for version in ("TLS 1.0", "TLS 1.1") if version in accepted]
    summary = _protocol_summary(results)
    if not modern:
        return Check(
            "protocols",
            "Protocols",
            Status.FAIL,
            f"neither TLS 1.2 nor TLS 1.3 is accepted ({summary}{_tls12_reason(results)}); "
            "Tradecloud cannot connect",
            "enable TLS 1.2 and TLS 1.3 (nginx: ssl_protocols TLSv1.2 TLSv1.3;)",
        )
    if legacy:
        return Check(
            "protocols",
            "Protocols",
            Status.WARN,
            f"{summary}; Tradecloud's sender never uses {' and '.join(legacy)}, so delivery works, "
            "but offering them caps an SSL Labs grade at B",
            "disable TLS 1.0 and TLS 1.1 (nginx: ssl_protocols TLSv1.2 TLSv1.3;)",
        )
    return Check("protocols", "Protocols", Status.PASS, summary)


def _tls12_reason(results: Mapping[str, HandshakeResult]) -> str:
    result = results.get("TLS 1.2")
    return f"; TLS 1.2 handshake: {result.error}" if result is not None and result.error else ""


def _protocol_summary(results: Mapping[str, HandshakeResult]) -> str:
    accepted = [version for version, result in results.items() if result.accepted]
    refused = [version for version, result in results.items() if not result.accepted]
    parts = []
    if accepted:
        parts.append(f"accepts {', '.join(accepted)}")
    if refused:
        parts.append(f"refuses {', '.join(refused)}")
    return "; ".join(parts)


# ---------------------------------------------------------------------------------------------
# Chain building


@dataclass(frozen=True)
class ChainPath:
    """How far the certificates sent lead from the leaf towards a trusted root."""

    path: tuple[x509.Certificate, ...]
    anchor: x509.Certificate | None
    problem: str | None  # None, "self-signed", "missing-intermediate" or "unknown-root"

    @property
    def top(self) -> x509.Certificate:
        return self.path[-1]


def build_path(chain: Sequence[x509.Certificate], store: TrustStore) -> ChainPath:
    """Follow issuers from the leaf through the certificates sent, as a client without AIA does.

    A leaf whose issuer is neither sent nor trusted means a missing intermediate when the leaf
    names where its issuer can be fetched (AIA caIssuers, which every public CA includes and
    browsers follow) or when the user gave the private CA with --ca-file; otherwise its issuer
    is an unknown CA. A CA certificate whose issuer is neither sent nor trusted, or a self-signed
    root that is not trusted, means an unknown root.
    """
    leaf = chain[0]
    path = [leaf]
    while True:
        current = path[-1]
        self_signed = certs.is_self_signed(current)
        if self_signed and store.contains(current) and current is not leaf:
            return ChainPath(tuple(path), current, None)
        if self_signed:
            problem = "self-signed" if current is leaf else "unknown-root"
            return ChainPath(tuple(path), None, problem)
        anchor = store.issuer_of(current)
        if anchor is not None:
            return ChainPath(tuple(path), anchor, None)
        pool = [candidate for candidate in chain if all(candidate is not p for p in path)]
        issuer = certs.find_issuer(current, pool)
        if issuer is None:
            expects_intermediate = current is leaf and (
                certs.has_ca_issuers_url(leaf) or store.has_extra_ca
            )
            problem = "missing-intermediate" if expects_intermediate else "unknown-root"
            return ChainPath(tuple(path), None, problem)
        path.append(issuer)


# ---------------------------------------------------------------------------------------------
# Trust


def trust_check(
    chain: Sequence[x509.Certificate],
    store: TrustStore,
    hostname: str | None,
    now: datetime,
    verification: HandshakeResult | None = None,
) -> Check:
    """Would a JVM client trust this chain for this host? One row, every problem named.

    ``verification`` is the real verifying handshake (OpenSSL's verdict) when checking a server;
    its failure counts even when our own analysis finds nothing.
    """
    if not chain:
        reason = verification.error if verification is not None else "no certificate"
        return Check(
            "trust",
            "Trust",
            Status.FAIL,
            f"could not get the certificate: {reason}",
            "make the server complete a TLS 1.2 or 1.3 handshake (see Protocols)",
        )
    leaf = chain[0]
    path = build_path(chain, store)
    findings: list[str] = []
    fixes: list[str] = []
    if path.problem == "self-signed":
        findings.append(
            f"the certificate is self-signed ({certs.display_name(leaf.subject)!r} issued it to "
            "itself); Tradecloud rejects self-signed certificates"
        )
        fixes.append("get a certificate from a public CA (for example Let's Encrypt)")
    elif path.problem == "missing-intermediate":
        findings.append(
            f"missing intermediate: the server sends only {_count(len(path.path))} and the issuer "
            f"{certs.display_name(path.top.issuer)!r} is neither sent nor a trusted root; "
            + JVM_NOTE
        )
        fixes.append(FULL_CHAIN_FIX)
    elif path.problem == "unknown-root":
        top = path.top
        root_name = certs.display_name(top.subject if certs.is_self_signed(top) else top.issuer)
        findings.append(
            f"unknown root: the chain leads to {root_name!r}, which is not in the trust store "
            f"({store.source}); Tradecloud only trusts public CAs"
        )
        fixes.append(
            "use a certificate from a public CA; for a private or test CA, pass its certificate "
            "to --ca-file to check the rest"
        )
    for certificate in (*path.path, *([path.anchor] if path.anchor is not None else [])):
        if certs.not_after(certificate) < now:
            findings.append(
                f"{_role(certificate, leaf)} {certs.display_name(certificate.subject)!r} expired "
                f"on {certs.not_after(certificate):%Y-%m-%d} "
                f"({(now - certs.not_after(certificate)).days} days ago)"
            )
            fixes.append("renew the certificate and install the new one with its chain")
        elif certs.not_before(certificate) > now:
            findings.append(
                f"{_role(certificate, leaf)} {certs.display_name(certificate.subject)!r} is not "
                f"valid yet (valid from {certs.not_before(certificate):%Y-%m-%d %H:%M} UTC)"
            )
            fixes.append("check the server clock and the certificate's start date")
    if hostname is not None and not matches(leaf, hostname):
        names = ", ".join(certificate_names(leaf)) or "no names"
        findings.append(f"hostname mismatch: the certificate is for {names}, not {hostname}")
        fixes.append(
            f"get a certificate whose subjectAltName includes {hostname}, or check the URL"
        )
    if not findings and verification is not None and verification.verify_message:
        findings.append(f"OpenSSL refused the certificate: {verification.verify_message}")
        fixes.append("see the Key and signature row, and check the chain with openssl s_client")
    if findings:
        return Check("trust", "Trust", Status.FAIL, "; ".join(findings), " ".join(_unique(fixes)))
    anchor_name = certs.display_name(path.anchor.subject) if path.anchor is not None else "?"
    host_note = f", valid for {hostname}" if hostname is not None else ""
    return Check(
        "trust",
        "Trust",
        Status.PASS,
        f"chain of {_count(len(path.path))} sent leads to trusted root {anchor_name!r} "
        f"without fetching anything{host_note}",
    )


def _count(number: int) -> str:
    return "1 certificate" if number == 1 else f"{number} certificates"


def _role(certificate: x509.Certificate, leaf: x509.Certificate) -> str:
    if certificate is leaf:
        return "the certificate"
    if certs.is_self_signed(certificate):
        return "the root"
    return "the intermediate"


def _unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


# ---------------------------------------------------------------------------------------------
# Chain order


def chain_order_check(chain: Sequence[x509.Certificate], store: TrustStore) -> Check:
    if not chain:
        return Check("chain-order", "Chain order", Status.INFO, "no certificates received")
    names = " → ".join(certs.display_name(certificate.subject) for certificate in chain)
    if len(chain) == 1:
        return Check("chain-order", "Chain order", Status.PASS, f"1 certificate sent: {names}")
    path = build_path(chain, store)
    in_path = [any(c is p for p in path.path) for c in chain]
    unrelated = [
        certs.display_name(certificate.subject)
        for certificate, used in zip(chain, in_path, strict=True)
        if not used and not _issues_top(certificate, path)
    ]
    in_order = all(
        certs.issued_by(chain[index], chain[index + 1]) for index in range(len(chain) - 1)
    )
    has_root = any(certs.is_self_signed(certificate) for certificate in chain[1:])
    root_note = " (includes the root certificate: harmless, clients ignore it)" if has_root else ""
    if unrelated:
        return Check(
            "chain-order",
            "Chain order",
            Status.WARN,
            f"sent: {names}; not part of the chain: {', '.join(unrelated)}",
            "send only your certificate followed by its intermediates, in issuing order",
        )
    if not in_order:
        return Check(
            "chain-order",
            "Chain order",
            Status.WARN,
            f"certificates sent out of order: {names}{root_note}; strict clients fail on this",
            "send your certificate first, then each issuer in turn "
            "(cat cert.pem intermediate.pem > fullchain.pem)",
        )
    return Check("chain-order", "Chain order", Status.PASS, f"in order: {names}{root_note}")


def _issues_top(certificate: x509.Certificate, path: ChainPath) -> bool:
    """A root sent after the path's top is part of the chain, even when it is not trusted."""
    return certs.issued_by(path.top, certificate)


# ---------------------------------------------------------------------------------------------
# Expiry


def expiry_check(chain: Sequence[x509.Certificate], now: datetime, warn_days: int) -> Check:
    if not chain:
        return Check("expiry", "Expiry", Status.INFO, "no certificates received")
    leaf = chain[0]
    relevant = [leaf, *(c for c in chain[1:] if not certs.is_self_signed(c))]
    expired: list[str] = []
    not_yet: list[str] = []
    soon: list[str] = []
    for certificate in relevant:
        label = f"{_role(certificate, leaf)} {certs.display_name(certificate.subject)!r}"
        end = certs.not_after(certificate)
        days_left = (end - now).days
        if end < now:
            expired.append(f"{label} expired on {end:%Y-%m-%d} ({(now - end).days} days ago)")
        elif certs.not_before(certificate) > now:
            not_yet.append(
                f"{label} is not valid before {certs.not_before(certificate):%Y-%m-%d %H:%M} UTC"
            )
        elif days_left < warn_days:
            soon.append(f"{label} expires on {end:%Y-%m-%d} ({days_left} days left)")
    if expired or not_yet:
        return Check(
            "expiry",
            "Expiry",
            Status.FAIL,
            "; ".join(expired + not_yet),
            "renew the certificate (or fix the server clock) and install it with its chain",
        )
    if soon:
        return Check(
            "expiry",
            "Expiry",
            Status.WARN,
            "; ".join(soon),
            f"renew now (this warns {warn_days} days ahead) and check that automatic renewal works",
        )
    end = certs.not_after(leaf)
    return Check(
        "expiry",
        "Expiry",
        Status.PASS,
        f"valid until {end:%Y-%m-%d} ({(end - now).days} days left)",
    )


# ---------------------------------------------------------------------------------------------
# Key and signature


def key_signature_check(chain: Sequence[x509.Certificate]) -> Check:
    if not chain:
        return Check("key-signature", "Key and signature", Status.INFO, "no certificates received")
    leaf = chain[0]
    problems: list[str] = []
    for certificate in chain:
        root = certs.is_self_signed(certificate) and certificate is not leaf
        label = f"{_role(certificate, leaf)} {certs.display_name(certificate.subject)!r}"
        weakness = _key_weakness(certificate)
        if weakness:
            problems.append(f"{label} has {weakness}")
        # A root's signature on itself is never checked by anyone, so its hash does not matter.
        hash_name = certs.signature_hash_name(certificate)
        if not root and hash_name in WEAK_HASHES:
            problems.append(f"{label} is signed with {certs.signature_description(certificate)}")
    if problems:
        return Check(
            "key-signature",
            "Key and signature",
            Status.FAIL,
            "; ".join(problems) + "; no public CA issues these any more, so this is a policy "
            "failure even where a JVM would still accept it from a private CA",
            "reissue with an RSA key of at least 2048 bits or an EC P-256/P-384 key, "
            "signed with SHA-256 or better",
        )
    return Check(
        "key-signature",
        "Key and signature",
        Status.PASS,
        f"{certs.key_description(leaf)} key, {certs.signature_description(leaf)}",
    )


def _key_weakness(certificate: x509.Certificate) -> str | None:
    if certs.uses_dsa(certificate):
        return "a DSA key (no longer issued or accepted by browsers)"
    key = certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        return f"a {key.key_size}-bit RSA key (minimum 2048)"
    if isinstance(key, ec.EllipticCurvePublicKey) and key.key_size < 256:
        return f"a {key.key_size}-bit EC key (minimum 256)"
    return None


# ---------------------------------------------------------------------------------------------
# Cipher suites at TLS 1.2


def cipher_check(
    protocols: Mapping[str, HandshakeResult],
    forward_secret: HandshakeResult | None,
    static_rsa: HandshakeResult | None,
    weak: HandshakeResult | None,
) -> Check:
    tls12 = protocols.get("TLS 1.2")
    if tls12 is None or not tls12.accepted:
        tls13 = protocols.get("TLS 1.3")
        if tls13 is not None and tls13.accepted:
            return Check(
                "ciphers",
                "Cipher suites",
                Status.PASS,
                "TLS 1.2 is not offered; every TLS 1.3 suite has forward secrecy",
            )
        return Check("ciphers", "Cipher suites", Status.INFO, "not checked: TLS 1.2 not accepted")
    findings: list[str] = []
    fixes: list[str] = []
    status = Status.PASS
    fs_ok = forward_secret is not None and forward_secret.accepted
    rsa_ok = static_rsa is not None and static_rsa.accepted
    if not fs_ok and rsa_ok:
        status = Status.WARN
        findings.append(
            f"TLS 1.2 offers only static-RSA key exchange without forward secrecy "
            f"({static_rsa.cipher if static_rsa else '?'}); newer JVMs disable these suites"
        )
        fixes.append("enable ECDHE suites (e.g. ECDHE-RSA-AES128-GCM-SHA256)")
    elif fs_ok:
        findings.append(
            f"forward secrecy at TLS 1.2 ({forward_secret.cipher if forward_secret else '?'})"
        )
        if rsa_ok:
            findings.append("static-RSA suites also accepted (not chosen by modern clients)")
    if weak is not None and weak.accepted:
        status = Status.WARN
        findings.append(f"accepts a weak suite: {weak.cipher}")
        fixes.append("disable RC4, 3DES, NULL, EXPORT and anonymous (aNULL) suites")
    if not findings:
        findings.append(f"TLS 1.2 negotiates {tls12.cipher}")
    return Check("ciphers", "Cipher suites", status, "; ".join(findings), " ".join(fixes))


# ---------------------------------------------------------------------------------------------
# Endpoint


def endpoint_check(
    anonymous: HttpResult | None,
    authenticated: HttpResult | None,
    has_credentials: bool,
    skip_reason: str | None = None,
) -> Check:
    """What Tradecloud would make of the endpoint's answers to a POST of ``{}``."""
    if skip_reason is not None or anonymous is None:
        return Check("endpoint", "Endpoint", Status.INFO, f"skipped: {skip_reason}")
    findings: list[str] = []
    fixes: list[str] = []
    statuses: list[Status] = []
    status, finding, fix = _judge_anonymous(anonymous)
    statuses.append(status)
    findings.append(finding)
    fixes.append(fix)
    if has_credentials:
        status, finding, fix = _judge_authenticated(authenticated)
        statuses.append(status)
        findings.append(finding)
        fixes.append(fix)
    worst = max(statuses, key=_severity)
    return Check(
        "endpoint", "Endpoint", worst, "; ".join(findings), " ".join(f for f in fixes if f)
    )


def _severity(status: Status) -> int:
    return {Status.INFO: 0, Status.PASS: 1, Status.WARN: 2, Status.FAIL: 3}[status]


def tradecloud_reaction(status: int) -> str:
    """What Tradecloud's sender does with this status.

    See docs/tradecloud.md#status-codes-and-retries.
    """
    verdict = protocol.verdict(status)
    if verdict == "delivered":
        return "Tradecloud counts the event as delivered"
    if verdict == "retried":
        return "Tradecloud retries with back-off"
    if 300 <= status < 400:
        return "a redirect: the event is not delivered"
    if status == 500:
        return "Tradecloud gives up (500 is never retried)"
    return "Tradecloud gives up (4xx is never retried)"


def _auth_scheme(result: HttpResult) -> str:
    """What the 401's challenge says about the method the endpoint wants (Basic, Bearer, ...)."""
    challenge = (result.www_authenticate or "").strip()
    if not challenge:
        return " (no WWW-Authenticate challenge)"
    scheme = challenge.split(None, 1)[0].rstrip(",")
    safe = "".join(ch for ch in scheme if ch.isalnum() or ch in "-_")[:20]
    hint = " with error=invalid_token (OAuth)" if "invalid_token" in challenge else ""
    return f" (asks for {safe or 'an unknown scheme'}{hint})"


def _judge_anonymous(result: HttpResult) -> tuple[Status, str, str]:
    if result.status is None:
        return (
            Status.FAIL,
            f"POST without credentials got no answer ({result.tls_error or result.error})",
            "make the endpoint answer HTTPS POST requests",
        )
    code = result.status
    seen = f"POST {{}} without credentials got {code} {result.reason}".rstrip()
    if code == 401:
        return Status.PASS, f"{seen}, as expected{_auth_scheme(result)}", ""
    if 200 <= code < 300:
        return (
            Status.FAIL,
            f"{seen}: anyone on the internet can inject orders",
            "require Basic or Bearer authentication and answer 401 without it",
        )
    if code == 403:
        return (
            Status.WARN,
            f"{seen}; 401 is the documented answer to missing credentials",
            ("answer 401 when the Authorization header is missing or wrong"),
        )
    if 300 <= code < 400:
        where = f" to {result.location}" if result.location else ""
        return (
            Status.FAIL,
            f"{seen} (redirect{where}); {tradecloud_reaction(code)}",
            "configure the final URL in the Tradecloud portal; the endpoint must not redirect",
        )
    if code in (404, 405):
        return (
            Status.FAIL,
            f"{seen}: wrong path or method, so every event would be lost "
            f"({tradecloud_reaction(code)})",
            "check the URL path and that the endpoint accepts POST",
        )
    return (
        Status.WARN,
        f"{seen}, not 401: credentials may not be checked before the body; "
        f"{tradecloud_reaction(code)}",
        "check credentials first and answer 401 when they are missing",
    )


def _judge_authenticated(result: HttpResult | None) -> tuple[Status, str, str]:
    if result is None or result.status is None:
        reason = "not sent"
        if result is not None:
            reason = result.tls_error or result.error or reason
        if result is not None and result.verify_failed:
            return (
                Status.INFO,
                f"credentials not sent: the certificate is not trusted ({reason})",
                "",
            )
        return Status.FAIL, f"POST with credentials got no answer ({reason})", ""
    code = result.status
    seen = f"with credentials got {code} {result.reason}".rstrip()
    if code in (401, 403):
        return (
            Status.FAIL,
            f"{seen}: the credentials are refused; {tradecloud_reaction(code)}",
            "enter the same credentials in the Tradecloud portal and on the endpoint",
        )
    if 200 <= code < 300:
        return Status.PASS, f"{seen}: credentials accepted ({tradecloud_reaction(code)})", ""
    if code == 400:
        return (
            Status.PASS,
            f"{seen}: credentials accepted, the empty test body rejected as invalid",
            "",
        )
    return (
        Status.WARN,
        f"{seen}: {tradecloud_reaction(code)}",
        ("check the endpoint's logs for this request"),
    )


# ---------------------------------------------------------------------------------------------
# Plain HTTP


def plain_http_check(result: HttpResult | None, port: int) -> Check:
    title = "Plain HTTP"
    if result is None:
        return Check("plain-http", title, Status.INFO, "not checked")
    if result.refused:
        return Check(
            "plain-http", title, Status.INFO, f"port {port} closed (Tradecloud only uses HTTPS)"
        )
    if result.status is None:
        return Check(
            "plain-http", title, Status.INFO, f"port {port}: no HTTP answer ({result.error})"
        )
    if 300 <= result.status < 400:
        where = f" to {result.location}" if result.location else ""
        return Check(
            "plain-http",
            title,
            Status.INFO,
            f"port {port} redirects{where} ({result.status}) without serving the webhook",
        )
    return Check(
        "plain-http",
        title,
        Status.INFO,
        f"port {port} answers {result.status} {result.reason} over plain HTTP; Tradecloud never "
        "uses it",
        "close port 80 or make it only redirect to HTTPS, so no credentials travel in clear text",
    )


# ---------------------------------------------------------------------------------------------
# Key pair (file mode)


def key_match_check(certificate: x509.Certificate, key: object | None) -> Check:
    if key is None:
        return Check("key-match", "Key matches", Status.INFO, "no --key given")
    if certs.uses_dsa(certificate):
        return Check("key-match", "Key matches", Status.INFO, "a DSA certificate: not compared")
    public = getattr(key, "public_key", None)
    if public is not None and public() == certificate.public_key():
        return Check(
            "key-match", "Key matches", Status.PASS, "the private key matches the certificate"
        )
    return Check(
        "key-match",
        "Key matches",
        Status.FAIL,
        "the private key does not belong to the certificate; the server would fail to start or "
        "every handshake would fail",
        "pair the certificate with the key it was issued for (compare their public keys)",
    )
