"""Cipher suites at TLS 1.2: forward secrecy, and no weak suite accepted."""

from __future__ import annotations

from collections.abc import Mapping

from tcwebhook.tlscheck.probes import HandshakeResult
from tcwebhook.tlscheck.report import Check, Status


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
