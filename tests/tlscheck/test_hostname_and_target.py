"""Pure helpers: hostname matching (RFC 6125) and target parsing."""

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
