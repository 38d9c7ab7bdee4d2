"""Pure rules: hostname matching and target parsing."""

from __future__ import annotations

import pytest

from tcwebhook.errors import TlsCheckError
from tcwebhook.tlscheck.hostname import dns_name_matches
from tcwebhook.tlscheck.target import parse_target


@pytest.mark.parametrize(
    ("pattern", "host", "expected"),
    [
        ("erp.example.com", "erp.example.com", True),
        ("erp.example.com", "ERP.Example.com", False),  # callers normalise case first
        ("*.example.com", "erp.example.com", True),
        ("*.example.com", "a.erp.example.com", False),  # one label only
        ("*.example.com", "example.com", False),
        ("*.com", "example.com", False),  # no wildcard over a public suffix
        ("e*.example.com", "erp.example.com", False),  # no partial wildcards
        ("erp.*.com", "erp.example.com", False),
    ],
)
def test_dns_name_matching_follows_rfc_6125(pattern, host, expected):
    assert dns_name_matches(pattern, host) is expected


def test_targets_parse_with_default_port_and_path():
    target = parse_target("erp.example.com")
    assert (target.host, target.port, target.path) == ("erp.example.com", 443, "/")
    target = parse_target("https://[::1]:8443/hook?x=1", servername="erp.example.com")
    assert (target.host, target.port, target.path) == ("::1", 8443, "/hook?x=1")
    assert target.servername == "erp.example.com"
    assert target.display == "https://[::1]:8443/hook?x=1"


@pytest.mark.parametrize(
    "text", ["http://erp.example.com/hook", "https://erp.example.com:99999/", "https:///x"]
)
def test_bad_targets_are_one_readable_error(text):
    with pytest.raises(TlsCheckError):
        parse_target(text)


@pytest.mark.parametrize(
    ("challenge", "seen"),
    [
        ('Bearer realm="tcwebhook"', "asks for Bearer)"),
        ('Bearer realm="x", error="invalid_token"', "asks for Bearer with error=invalid_token"),
        ('Basic realm="x", charset="UTF-8"', "asks for Basic)"),
        ("\x1b[31mEvil", "asks for 31mEvil)"),  # nothing from the server reaches the terminal raw
        (None, "no WWW-Authenticate challenge"),
    ],
)
def test_endpoint_check_reports_the_auth_scheme_of_the_401(challenge, seen):
    from tcwebhook.tlscheck.probes import HttpResult
    from tcwebhook.tlscheck.rules import endpoint_check

    row = endpoint_check(HttpResult(401, "Unauthorized", www_authenticate=challenge), None, False)
    assert seen in row.finding
