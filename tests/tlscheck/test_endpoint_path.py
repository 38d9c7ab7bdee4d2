"""The endpoint row against a real TLS server that checks credentials before it routes, as
``tcwebhook serve`` does: a wrong path is a failure with credentials, and cannot pass without."""

from __future__ import annotations

import json
import sys

import pytest

from tcwebhook.cli import main
from tcwebhook.tlscheck import Credentials, ReportStatus, Status, check_tls

TOKEN = "s3cret-token"
RECEIVER_PATHS = ("/tradecloud/order", "/tradecloud/shipment")


def receiver(headers: dict[str, str]) -> int:
    """Authentication first, then the route: 401, then 404/405, then 400 for the empty body."""
    if headers.get("authorization") != f"Bearer {TOKEN}":
        return 401
    method, path, _ = headers["request-line"].split(" ", 2)
    if path not in RECEIVER_PATHS:
        return 404
    if method not in ("POST", "PUT"):
        return 405
    return 400  # `{}` carries no payload key


def get_only(headers: dict[str, str]) -> int:
    """A server whose webhook route takes GET only (the legacy `{orderId}` style)."""
    if headers.get("authorization") != f"Bearer {TOKEN}":
        return 401
    return 405


def url(port: int, path: str) -> str:
    return f"https://127.0.0.1:{port}{path}"


def test_wrong_path_with_a_token_fails_and_names_the_path(pki, servers, options):
    server = servers.start(pki.leaf, chain=(pki.intermediate,), status=receiver)
    report = check_tls(url(server.port, "/wrong/path"), options(credentials=Credentials(TOKEN)))
    row = report.check("endpoint")
    assert row.status is Status.FAIL, row
    assert report.verdict is ReportStatus.FAIL
    assert report.exit_code() == 1
    assert "got 404" in row.finding
    assert "/wrong/path" in row.finding
    assert "every event would be lost" in row.finding
    # What the path should look like: the receiver's own paths.
    assert "/tradecloud/order" in row.fix
    assert "/tradecloud/shipment" in row.fix
    assert TOKEN not in str(report.to_dict())
    # Both requests went to the path given, the second one with the token.
    assert [r["request-line"] for r in server.requests] == ["POST /wrong/path HTTP/1.1"] * 2


def test_method_not_allowed_with_a_token_fails(pki, servers, options):
    server = servers.start(pki.leaf, chain=(pki.intermediate,), status=get_only)
    report = check_tls(url(server.port, "/erp/order"), options(credentials=Credentials(TOKEN)))
    row = report.check("endpoint")
    assert row.status is Status.FAIL, row
    assert "got 405" in row.finding
    assert "/erp/order does not take POST" in row.finding


def test_redirect_with_a_token_fails(pki, servers, options):
    def redirects(headers: dict[str, str]) -> int:
        return 308 if headers.get("authorization") == f"Bearer {TOKEN}" else 401

    server = servers.start(pki.leaf, chain=(pki.intermediate,), status=redirects)
    report = check_tls(url(server.port, "/hook"), options(credentials=Credentials(TOKEN)))
    row = report.check("endpoint")
    assert row.status is Status.FAIL, row
    assert "redirect" in row.finding


def test_right_path_with_a_token_passes(pki, servers, options):
    server = servers.start(pki.leaf, chain=(pki.intermediate,), status=receiver)
    report = check_tls(
        url(server.port, "/tradecloud/order"), options(credentials=Credentials(TOKEN))
    )
    row = report.check("endpoint")
    assert row.status is Status.PASS, row
    assert report.verdict is ReportStatus.PASS
    assert "credentials accepted" in row.finding


@pytest.mark.parametrize("path", ["/wrong/path", "/tradecloud/order"])
def test_without_credentials_the_path_is_not_checked_and_does_not_pass(pki, servers, options, path):
    server = servers.start(pki.leaf, chain=(pki.intermediate,), status=receiver)
    report = check_tls(url(server.port, path), options())
    row = report.check("endpoint")
    assert row.status is Status.INFO, row
    assert "got 401" in row.finding
    assert "path and authentication could not be checked" in row.finding
    assert "--token" in row.fix and "--user" in row.fix
    # The TLS rows still pass, so the exit code stays 0; the endpoint was simply not proven.
    assert report.verdict is ReportStatus.PASS
    assert report.exit_code() == 0


def test_a_token_not_sent_to_an_untrusted_server_does_not_pass(pki, servers, options):
    server = servers.start(pki.leaf, chain=(pki.intermediate,), status=receiver)
    report = check_tls(
        url(server.port, "/wrong/path"), options(ca_file=None, credentials=Credentials(TOKEN))
    )
    row = report.check("endpoint")
    assert row.status is Status.INFO, row
    assert "credentials not sent" in row.finding
    assert "Trust row first" in row.fix
    assert all("authorization" not in r for r in server.requests)


def run_cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["tcwebhook", "check-tls", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    return exited.value.code or 0


def common_args(pki, closed_port: int) -> list[str]:
    return [
        "--ca-file",
        str(pki.root_file),
        "--servername",
        "localhost",
        "--http-port",
        str(closed_port),
    ]


def test_cli_wrong_path_with_a_token_exits_1(pki, servers, closed_port, monkeypatch, capsys):
    server = servers.start(pki.leaf, chain=(pki.intermediate,), status=receiver)
    args = [url(server.port, "/wrong/path"), *common_args(pki, closed_port), "--token", TOKEN]
    assert run_cli(monkeypatch, *args, "--json") == 1
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "fail"
    endpoint = next(check for check in data["checks"] if check["id"] == "endpoint")
    assert endpoint["status"] == "fail"
    assert "/wrong/path" in endpoint["finding"]
    assert run_cli(monkeypatch, *args) == 1
    output = capsys.readouterr().out
    assert "FAIL: 1 check failed" in output
    assert TOKEN not in output


def test_cli_without_credentials_says_the_endpoint_was_not_checked(
    pki, servers, closed_port, monkeypatch, capsys
):
    server = servers.start(pki.leaf, chain=(pki.intermediate,), status=receiver)
    code = run_cli(monkeypatch, url(server.port, "/wrong/path"), *common_args(pki, closed_port))
    output = capsys.readouterr().out
    assert code == 0
    # Under the verdict line, however the terminal wraps it.
    after_verdict = " ".join(output.split("\nPASS: ")[1].split())
    assert "path and authentication were not checked: pass --token" in after_verdict, output
