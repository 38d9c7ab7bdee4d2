"""One test per scenario: a real TLS server on loopback, check_tls() against it, the verdict and
the row that matters."""

from __future__ import annotations

import datetime as dt
import http.server
import ssl
import threading

from tcwebhook.tlscheck import Credentials, ReportStatus, Status, check_tls
from tests.helpers.pki import NOW, make_ca, make_leaf, sign_with_sha1

TLS1 = ssl.TLSVersion.TLSv1
TLS1_1 = ssl.TLSVersion.TLSv1_1
TLS1_2 = ssl.TLSVersion.TLSv1_2
TLS1_3 = ssl.TLSVersion.TLSv1_3


def _bearer_secret(headers: dict[str, str]) -> int:
    return 400 if headers.get("authorization") == "Bearer s3cret" else 401


def test_good_chain_passes_every_row(pki, servers, options):
    server = servers.start(pki.leaf, chain=(pki.intermediate,), status=_bearer_secret)
    report = check_tls(server.url, options(credentials=Credentials(token="s3cret")))
    assert report.verdict is ReportStatus.PASS, report.checks
    assert {check.id: check.status for check in report.checks} == {
        "protocols": Status.PASS,
        "trust": Status.PASS,
        "chain-order": Status.PASS,
        "expiry": Status.PASS,
        "key-signature": Status.PASS,
        "ciphers": Status.PASS,
        "endpoint": Status.PASS,
        "plain-http": Status.INFO,
    }
    assert "tcwebhook Test Root" in report.check("trust").finding
    assert [c.subject for c in report.chain] == ["localhost", "tcwebhook Test Intermediate"]
    # The endpoint saw exactly what Tradecloud sends: a JSON POST, once without credentials.
    assert [r["request-line"] for r in server.requests] == ["POST /webhook HTTP/1.1"] * 2
    assert all(r["body"] == "{}" for r in server.requests)
    assert sorted(r.get("authorization", "") for r in server.requests) == ["", "Bearer s3cret"]


def test_tls13_only_passes(pki, servers, options):
    server = servers.start(pki.leaf, chain=(pki.intermediate,), minimum=TLS1_3)
    report = check_tls(server.url, options())
    assert report.verdict is ReportStatus.PASS, report.checks
    assert "refuses TLS 1.0, TLS 1.1, TLS 1.2" in report.check("protocols").finding
    assert report.check("ciphers").status is Status.PASS


def test_tls12_only_passes(pki, servers, options):
    server = servers.start(pki.leaf, chain=(pki.intermediate,), maximum=TLS1_2)
    report = check_tls(server.url, options())
    assert report.verdict is ReportStatus.PASS, report.checks
    assert report.check("protocols").finding == "accepts TLS 1.2; refuses TLS 1.0, TLS 1.1, TLS 1.3"


def test_chain_including_the_root_passes(pki, servers, options):
    server = servers.start(pki.leaf, chain=(pki.intermediate, pki.root))
    report = check_tls(server.url, options())
    assert report.verdict is ReportStatus.PASS, report.checks
    row = report.check("chain-order")
    assert row.status is Status.PASS
    assert "includes the root" in row.finding


def test_self_signed_fails(pki, servers, options):
    leaf = make_leaf(pki.intermediate, pki.keys.other, self_signed=True)
    server = servers.start(leaf)
    report = check_tls(server.url, options())
    assert report.verdict is ReportStatus.FAIL
    row = report.check("trust")
    assert row.status is Status.FAIL
    assert "self-signed" in row.finding
    assert "missing intermediate" not in row.finding


def test_expired_fails(pki, servers, options):
    leaf = pki.leaf_with(
        not_before=NOW - dt.timedelta(days=100), not_after=NOW - dt.timedelta(days=3)
    )
    server = servers.start(leaf, chain=(pki.intermediate,))
    report = check_tls(server.url, options())
    assert report.verdict is ReportStatus.FAIL
    assert "expired on" in report.check("trust").finding
    assert report.check("trust").status is Status.FAIL
    assert report.check("expiry").status is Status.FAIL


def test_not_yet_valid_fails(pki, servers, options):
    leaf = pki.leaf_with(
        not_before=NOW + dt.timedelta(days=2), not_after=NOW + dt.timedelta(days=90)
    )
    server = servers.start(leaf, chain=(pki.intermediate,))
    report = check_tls(server.url, options())
    assert report.verdict is ReportStatus.FAIL
    assert "not valid yet" in report.check("trust").finding


def test_hostname_mismatch_fails(pki, servers, options):
    leaf = pki.leaf_with(names=("www.example.com",))
    server = servers.start(leaf, chain=(pki.intermediate,))
    report = check_tls(server.url, options())
    assert report.verdict is ReportStatus.FAIL
    row = report.check("trust")
    assert row.finding.startswith("hostname mismatch: the certificate is for www.example.com")
    assert "localhost" in row.fix


def test_ip_address_target_matches_ip_san_without_servername(pki, servers, options):
    server = servers.start(pki.leaf, chain=(pki.intermediate,))
    report = check_tls(server.url, options(servername=None))
    assert report.check("trust").status is Status.PASS, report.check("trust")


def test_missing_intermediate_fails_and_is_not_called_unknown_root(pki, servers, options):
    server = servers.start(pki.leaf)  # the intermediate is not sent
    report = check_tls(server.url, options())
    assert report.verdict is ReportStatus.FAIL
    row = report.check("trust")
    assert row.finding.startswith("missing intermediate")
    assert "unknown root" not in row.finding
    assert "JVM" in row.finding
    assert "full chain" in row.fix


def test_good_server_without_ca_file_fails_as_unknown_root(pki, servers, options):
    server = servers.start(pki.leaf, chain=(pki.intermediate,))
    report = check_tls(server.url, options(ca_file=None))
    assert report.verdict is ReportStatus.FAIL
    row = report.check("trust")
    assert row.finding.startswith("unknown root")
    assert "tcwebhook Test Root" in row.finding
    assert "missing intermediate" not in row.finding


def test_tls10_and_tls11_also_enabled_warns(pki, servers, options):
    server = servers.start(pki.leaf, chain=(pki.intermediate,), minimum=TLS1)
    report = check_tls(server.url, options())
    assert report.verdict is ReportStatus.WARN, report.checks
    row = report.check("protocols")
    assert row.status is Status.WARN
    assert "accepts TLS 1.0, TLS 1.1, TLS 1.2, TLS 1.3" in row.finding
    assert report.exit_code() == 0
    assert report.exit_code(strict=True) == 1


def test_tls11_only_fails(pki, servers, options):
    server = servers.start(pki.leaf, chain=(pki.intermediate,), minimum=TLS1_1, maximum=TLS1_1)
    report = check_tls(server.url, options())
    assert report.verdict is ReportStatus.FAIL
    row = report.check("protocols")
    assert row.status is Status.FAIL
    assert "neither TLS 1.2 nor TLS 1.3" in row.finding
    assert "accepts TLS 1.1" in row.finding
    assert report.check("endpoint").status is Status.INFO


def test_tls10_only_fails(pki, servers, options):
    server = servers.start(pki.leaf, chain=(pki.intermediate,), minimum=TLS1, maximum=TLS1)
    report = check_tls(server.url, options())
    assert report.verdict is ReportStatus.FAIL
    assert report.check("protocols").finding.startswith("neither TLS 1.2 nor TLS 1.3")
    assert "accepts TLS 1.0;" in report.check("protocols").finding


def test_chain_out_of_order_warns(pki, servers, options):
    server = servers.start(pki.leaf, chain=(pki.root, pki.intermediate))
    report = check_tls(server.url, options())
    assert report.verdict is ReportStatus.WARN, report.checks
    assert report.check("chain-order").status is Status.WARN
    assert "out of order" in report.check("chain-order").finding
    assert report.check("trust").status is Status.PASS


def test_rsa_1024_fails(pki, servers, options):
    leaf = pki.leaf_with(key=pki.keys.rsa1024)
    server = servers.start(leaf, chain=(pki.intermediate,))
    report = check_tls(server.url, options())
    assert report.verdict is ReportStatus.FAIL
    row = report.check("key-signature")
    assert row.status is Status.FAIL
    assert "1024-bit RSA key" in row.finding


def test_sha1_signed_leaf_fails(pki, servers, options):
    server = servers.start(sign_with_sha1(pki), chain=(pki.intermediate,))
    report = check_tls(server.url, options())
    assert report.verdict is ReportStatus.FAIL
    row = report.check("key-signature")
    assert row.status is Status.FAIL
    assert "ecdsa-with-SHA1" in row.finding
    assert "policy failure" in row.finding
    assert report.chain[0].signature == "ecdsa-with-SHA1"
    # The chain itself is complete: the SHA-1 signature is the problem, not the intermediate.
    assert "missing intermediate" not in report.check("trust").finding
    assert report.check("chain-order").status is Status.PASS


def test_expiring_in_seven_days_warns(pki, servers, options):
    leaf = pki.leaf_with(not_after=NOW + dt.timedelta(days=7, hours=1))
    server = servers.start(leaf, chain=(pki.intermediate,))
    report = check_tls(server.url, options())
    assert report.verdict is ReportStatus.WARN, report.checks
    row = report.check("expiry")
    assert row.status is Status.WARN
    assert "(7 days left)" in row.finding
    assert f"{leaf.certificate.not_valid_after_utc:%Y-%m-%d}" in row.finding


def test_static_rsa_suites_only_warns(pki, servers, options):
    leaf = pki.leaf_with(key=pki.keys.rsa2048)
    server = servers.start(
        leaf, chain=(pki.intermediate,), maximum=TLS1_2, ciphers="kRSA:!eNULL:!aNULL"
    )
    report = check_tls(server.url, options())
    assert report.verdict is ReportStatus.WARN, report.checks
    row = report.check("ciphers")
    assert row.status is Status.WARN
    assert "only static-RSA" in row.finding
    assert "ECDHE" in row.fix


def test_endpoint_answering_200_without_credentials_fails(pki, servers, options):
    server = servers.start(pki.leaf, chain=(pki.intermediate,), status=200)
    report = check_tls(server.url, options())
    assert report.verdict is ReportStatus.FAIL
    row = report.check("endpoint")
    assert row.status is Status.FAIL
    assert "got 200" in row.finding
    assert "inject orders" in row.finding


def test_endpoint_accepting_the_token_passes(pki, servers, options):
    server = servers.start(pki.leaf, chain=(pki.intermediate,), status=_bearer_secret)
    report = check_tls(server.url, options(credentials=Credentials(token="s3cret")))
    row = report.check("endpoint")
    assert row.status is Status.PASS, row
    assert "got 401" in row.finding
    assert "credentials accepted" in row.finding
    assert "s3cret" not in str(report.to_dict())


def test_endpoint_refusing_basic_credentials_fails(pki, servers, options):
    server = servers.start(pki.leaf, chain=(pki.intermediate,), status=_bearer_secret)
    credentials = Credentials(user="erp", password="wrong-password")
    report = check_tls(server.url, options(credentials=credentials))
    row = report.check("endpoint")
    assert row.status is Status.FAIL
    assert "credentials are refused" in row.finding
    assert any(r.get("authorization", "").startswith("Basic ") for r in server.requests)
    assert "wrong-password" not in str(report.to_dict())


def test_no_endpoint_sends_no_request(pki, servers, options):
    server = servers.start(pki.leaf, chain=(pki.intermediate,), status=200)
    report = check_tls(server.url, options(endpoint=False))
    assert report.verdict is ReportStatus.PASS
    assert report.check("endpoint").status is Status.INFO
    assert server.requests == []


def test_dev_ca_leaf_without_aia_and_without_ca_file_is_an_unknown_root(pki, servers, options):
    # A dev CA (like the one `tcwebhook serve` makes) issues straight from its root, without AIA.
    dev_root = make_ca("dev CA", pki.keys.other)
    server = servers.start(make_leaf(dev_root, pki.keys.leaf, aia=False))
    report = check_tls(server.url, options(ca_file=None))
    row = report.check("trust")
    assert row.status is Status.FAIL
    assert row.finding.startswith("unknown root: the chain leads to 'dev CA'")
    assert "--ca-file" in row.fix


def test_plain_http_on_the_https_port_says_the_port_speaks_no_tls(options):
    # A common slip: the URL names the port of the application behind the TLS proxy.
    plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=plain.serve_forever, daemon=True).start()
    try:
        report = check_tls(f"https://127.0.0.1:{plain.server_address[1]}/webhook", options())
    finally:
        plain.shutdown()
        plain.server_close()
    assert report.verdict is ReportStatus.FAIL
    row = report.check("protocols")
    assert row.status is Status.FAIL
    assert row.finding.startswith("this port does not speak TLS"), row.finding
    assert "HTTPS port" in row.fix
    assert "ssl_protocols" not in row.fix
