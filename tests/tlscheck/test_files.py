"""--cert/--key/--chain: check PEM files before deployment, without any network."""

from __future__ import annotations

import pytest

from tcwebhook.cli.check_tls_output import verdict_line
from tcwebhook.errors import TlsCheckError
from tcwebhook.tlscheck import CheckOptions, ReportStatus, Status, check_files


def test_good_files_pass(pki):
    cert = pki.write("cert.pem", pki.leaf.pem)
    key = pki.write("cert.key", pki.leaf.key_pem)
    chain = pki.write("chain.pem", pki.intermediate.pem)
    options = CheckOptions(ca_file=pki.root_file, servername="localhost")
    report = check_files(cert, key, chain, options)
    assert report.verdict is ReportStatus.PASS, report.checks
    assert report.check("key-match").status is Status.PASS
    assert report.check("trust").status is Status.PASS
    assert [c.subject for c in report.chain] == ["localhost", "tcwebhook Test Intermediate"]


def test_broken_chain_and_wrong_key_fail(pki):
    # The certificate alone (no intermediate) and the key of another certificate.
    cert = pki.write("cert.pem", pki.leaf.pem)
    key = pki.write("other.key", pki.intermediate.key_pem)
    report = check_files(cert, key, None, CheckOptions(ca_file=pki.root_file))
    assert report.verdict is ReportStatus.FAIL
    assert report.check("key-match").status is Status.FAIL
    trust = report.check("trust")
    assert trust.finding.startswith("missing intermediate: the files hold only 1 certificate")
    assert "server sends" not in trust.finding
    assert "--chain" in trust.fix
    assert report.check("hostname").status is Status.INFO
    # No server was checked: the verdict speaks of one that would use these files.
    assert f"deliver to a server using {cert}" in verdict_line(report).plain


def test_chain_in_the_wrong_order_warns(pki):
    cert = pki.write("full.pem", pki.leaf.pem, pki.root.pem, pki.intermediate.pem)
    report = check_files(cert, None, None, CheckOptions(ca_file=pki.root_file))
    assert report.verdict is ReportStatus.WARN, report.checks
    assert report.check("chain-order").status is Status.WARN


def test_hostname_is_checked_with_servername(pki):
    cert = pki.write("full.pem", pki.leaf.pem, pki.intermediate.pem)
    options = CheckOptions(ca_file=pki.root_file, servername="erp.example.com")
    report = check_files(cert, None, None, options)
    assert report.check("trust").finding.startswith("hostname mismatch")
    assert "--servername" in report.check("trust").fix


def test_a_file_without_certificates_is_one_readable_error(pki):
    not_pem = pki.write("notes.txt", b"hello")
    with pytest.raises(TlsCheckError, match=r"holds no PEM certificate .* --cert"):
        check_files(not_pem, None, None, CheckOptions())


def test_a_file_name_with_a_terminal_control_is_shown_escaped(pki):
    cert = pki.write("odd\x1b[2J.pem", pki.leaf.pem, pki.intermediate.pem)
    report = check_files(cert, None, None, CheckOptions(ca_file=pki.root_file))
    line = verdict_line(report).plain
    assert "\x1b" not in line
    assert "odd\\x1b[2J.pem" in line
