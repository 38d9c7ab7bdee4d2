"""Protocols: is TLS 1.2 or 1.3 accepted, and are TLS 1.0/1.1 still offered?"""

from __future__ import annotations

from collections.abc import Mapping

from tcwebhook.tlscheck.probes import HandshakeResult
from tcwebhook.tlscheck.report import Check, Status

# What OpenSSL says when the first bytes back are no TLS record, e.g. "HTTP/1.1 400".
NOT_TLS_REASONS = ("wrong version number", "packet length too long")


def protocols_check(results: Mapping[str, HandshakeResult]) -> Check:
    accepted = [version for version, result in results.items() if result.accepted]
    modern = [version for version in ("TLS 1.2", "TLS 1.3") if version in accepted]
    legacy = [version for version in ("TLS 1.0", "TLS 1.1") if version in accepted]
    summary = _protocol_summary(results)
    non_tls = _non_tls_answer(results)
    if not accepted and non_tls is not None:
        return Check(
            "protocols",
            "Protocols",
            Status.FAIL,
            "this port does not speak TLS: every handshake got an answer that is not TLS "
            f"({non_tls}), typically plain HTTP; Tradecloud cannot connect",
            "use the HTTPS port in the URL (443 unless your server says otherwise), or enable "
            "TLS 1.2 and 1.3 on this port",
        )
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


def _non_tls_answer(results: Mapping[str, HandshakeResult]) -> str | None:
    """OpenSSL's reason when every handshake got bytes that are no TLS record, else None."""
    errors = [result.error or "" for result in results.values()]
    if errors and all(any(reason in error for reason in NOT_TLS_REASONS) for error in errors):
        return errors[0]
    return None


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
