"""Chain and certificate: the issuer path a client without AIA fetching builds, whether it
ends at a trusted root for this host, whether it was sent in order, and validity dates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509

from tcwebhook.tlscheck import certs
from tcwebhook.tlscheck.hostname import certificate_names, matches
from tcwebhook.tlscheck.probes import HandshakeResult
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

FILES_CHAIN_FIX = (
    "give the intermediate certificate(s) your CA gave you with --chain (or after your "
    "certificate in the --cert file); the server must send them the same way (e.g. "
    "fullchain.pem for nginx ssl_certificate)"
)
NOT_YET_VALID_FIX = (
    "install the certificate once its start date has passed, or have it reissued; if the date "
    "looks right, check this machine's clock (check-tls judges dates by it)"
)


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


def trust_check(
    chain: Sequence[x509.Certificate],
    store: TrustStore,
    hostname: str | None,
    now: datetime,
    verification: HandshakeResult | None = None,
    *,
    files: bool = False,
) -> Check:
    """Would a JVM client trust this chain for this host? One row, every problem named.

    ``verification`` is the real verifying handshake (OpenSSL's verdict) when checking a server;
    its failure counts even when our own analysis finds nothing. ``files``: the chain comes from
    PEM files (--cert, --chain), not from a server.
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
            f"missing intermediate: {'the files hold' if files else 'the server sends'} only "
            f"{_count(len(path.path))} and the issuer "
            f"{certs.display_name(path.top.issuer)!r} is neither "
            f"{'in the files' if files else 'sent'} nor a trusted root; " + JVM_NOTE
        )
        fixes.append(FILES_CHAIN_FIX if files else FULL_CHAIN_FIX)
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
        label = f"{certs.role(certificate, leaf)} {certs.display_name(certificate.subject)!r}"
        if certs.not_after(certificate) < now:
            findings.append(
                f"{label} expired on {certs.not_after(certificate):%Y-%m-%d} "
                f"({_days_ago(now - certs.not_after(certificate))})"
            )
            fixes.append("renew the certificate and install the new one with its chain")
        elif certs.not_before(certificate) > now:
            findings.append(
                f"{label} is not valid yet "
                f"(valid from {certs.not_before(certificate):%Y-%m-%d %H:%M} UTC)"
            )
            fixes.append(NOT_YET_VALID_FIX)
    if hostname is not None and not matches(leaf, hostname):
        names = ", ".join(certificate_names(leaf)) or "no names"
        findings.append(f"hostname mismatch: the certificate is for {names}, not {hostname}")
        fixes.append(
            f"get a certificate whose subjectAltName includes {hostname}, or check "
            + ("--servername" if files else "the URL")
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


def _unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


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


def expiry_check(chain: Sequence[x509.Certificate], now: datetime, warn_days: int) -> Check:
    if not chain:
        return Check("expiry", "Expiry", Status.INFO, "no certificates received")
    leaf = chain[0]
    relevant = [leaf, *(c for c in chain[1:] if not certs.is_self_signed(c))]
    expired: list[str] = []
    not_yet: list[str] = []
    soon: list[str] = []
    for certificate in relevant:
        label = f"{certs.role(certificate, leaf)} {certs.display_name(certificate.subject)!r}"
        end = certs.not_after(certificate)
        days_left = (end - now).days
        if end < now:
            expired.append(f"{label} expired on {end:%Y-%m-%d} ({_days_ago(now - end)})")
        elif certs.not_before(certificate) > now:
            not_yet.append(
                f"{label} is not valid before {certs.not_before(certificate):%Y-%m-%d %H:%M} UTC"
            )
        elif days_left < warn_days:
            soon.append(f"{label} expires on {end:%Y-%m-%d} ({_days_left(days_left)})")
    if expired or not_yet:
        fixes = ["renew the certificate and install it with its chain"] if expired else []
        return Check(
            "expiry",
            "Expiry",
            Status.FAIL,
            "; ".join(expired + not_yet),
            "; ".join(fixes + ([NOT_YET_VALID_FIX] if not_yet else [])),
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
        f"valid until {end:%Y-%m-%d} ({_days_left((end - now).days)})",
    )


def _days_ago(elapsed: timedelta) -> str:
    return "less than a day ago" if elapsed.days == 0 else f"{_plural(elapsed.days, 'day')} ago"


def _days_left(days: int) -> str:
    return "less than a day left" if days == 0 else f"{_plural(days, 'day')} left"


def _plural(number: int, word: str) -> str:
    return f"{number} {word}" if number == 1 else f"{number} {word}s"
