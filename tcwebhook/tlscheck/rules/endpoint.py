"""Endpoint and plain HTTP: what Tradecloud's sender would make of the answers to a POST."""

from __future__ import annotations

from tcwebhook import protocol
from tcwebhook.config import Paths
from tcwebhook.tlscheck.probes import HttpResult
from tcwebhook.tlscheck.report import Check, Status

CREDENTIALS_FIX = (
    "pass --token TOKEN or --user USER --password PASSWORD, as entered in the Tradecloud portal, "
    "to check them"
)


def receiver_paths() -> str:
    """Where ``tcwebhook serve`` receives events by default, as a user would type the URL."""
    defaults = Paths()
    return (
        f"{defaults.order} for order and order-documents events, {defaults.shipment} for shipments"
    )


def endpoint_check(
    anonymous: HttpResult | None,
    authenticated: HttpResult | None,
    has_credentials: bool,
    *,
    path: str = "/",
    skip_reason: str | None = None,
) -> Check:
    """What Tradecloud would make of the endpoint's answers to a POST of ``{}`` at ``path``.

    Only an answer to the request with credentials proves the path: many servers (tcwebhook's
    own receiver among them) answer 401 before they look at the path, so a 401 without
    credentials says nothing about it, and the row cannot pass on that alone.
    """
    if skip_reason is not None or anonymous is None:
        return Check("endpoint", "Endpoint", Status.INFO, f"skipped: {skip_reason}")
    judgements = [_judge_anonymous(anonymous, path, has_credentials)]
    if has_credentials:
        judgements.append(_judge_authenticated(authenticated, path))
    worst = max((status for status, _, _ in judgements), key=_severity)
    findings = [finding for _, finding, _ in judgements]
    fixes = dict.fromkeys(fix for _, _, fix in judgements if fix)
    return Check("endpoint", "Endpoint", worst, "; ".join(findings), " ".join(fixes))


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


def _judge_anonymous(
    result: HttpResult, path: str, has_credentials: bool
) -> tuple[Status, str, str]:
    if result.status is None:
        return (
            Status.FAIL,
            f"POST without credentials got no answer ({result.tls_error or result.error})",
            "make the endpoint answer HTTPS POST requests",
        )
    code = result.status
    seen = f"POST {{}} without credentials got {code} {result.reason}".rstrip()
    if code == 401:
        # INFO, not PASS: the 401 may come before routing, so only the answer to the request
        # with credentials can pass the row.
        if has_credentials:
            return Status.INFO, f"{seen}, as expected{_auth_scheme(result)}", ""
        return (
            Status.INFO,
            f"{seen}{_auth_scheme(result)}; the path and authentication could not be checked: "
            "a server may answer 401 before it looks at the path",
            CREDENTIALS_FIX,
        )
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
        return _wrong_path_or_method(seen, code, path)
    return (
        Status.WARN,
        f"{seen}, not 401: credentials may not be checked before the body; "
        f"{tradecloud_reaction(code)}",
        "check credentials first and answer 401 when they are missing",
    )


def _judge_authenticated(result: HttpResult | None, path: str) -> tuple[Status, str, str]:
    if result is None or result.status is None:
        reason = "not sent"
        if result is not None:
            reason = result.tls_error or result.error or reason
        if result is not None and result.verify_failed:
            return (
                Status.INFO,
                f"credentials not sent: the certificate is not trusted ({reason}), so the path "
                "and authentication could not be checked",
                "fix the Trust row first: check-tls sends credentials only where the certificate "
                "is trusted, as Tradecloud does",
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
    if code in (404, 405):
        return _wrong_path_or_method(seen, code, path)
    if 300 <= code < 400:
        where = f" to {result.location}" if result.location else ""
        return (
            Status.FAIL,
            f"{seen} (redirect{where}); {tradecloud_reaction(code)}",
            "configure the final URL in the Tradecloud portal; the endpoint must not redirect",
        )
    return (
        Status.WARN,
        f"{seen}: {tradecloud_reaction(code)}",
        ("check the endpoint's logs for this request"),
    )


def _wrong_path_or_method(seen: str, code: int, path: str) -> tuple[Status, str, str]:
    """404 or 405: Tradecloud drops the event for good, and every later one the same way."""
    if code == 405:
        problem = f"{path} does not take POST, the method Tradecloud delivers events with"
    else:
        problem = f"nothing answers at {path}"
    return (
        Status.FAIL,
        f"{seen}: wrong path: {problem}, so every event would be lost; {tradecloud_reaction(code)}",
        "enter the URL of the endpoint's webhook route in the Tradecloud portal and check that "
        f"URL (tcwebhook serve receives at {receiver_paths()}, unless server.paths says otherwise)",
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
