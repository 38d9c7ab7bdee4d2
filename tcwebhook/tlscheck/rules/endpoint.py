"""Endpoint and plain HTTP: what Tradecloud's sender would make of the answers to a POST."""

from __future__ import annotations

from tcwebhook import protocol
from tcwebhook.tlscheck.probes import HttpResult
from tcwebhook.tlscheck.report import Check, Status


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
