"""Tradecloud's TLS rules (``tlscheck.rules``) on probe results and certificates made here."""

from __future__ import annotations

import datetime as dt
import warnings

import pytest
from cryptography import x509

from tcwebhook.tlscheck import rules
from tcwebhook.tlscheck.probes import HandshakeResult, HttpResult
from tcwebhook.tlscheck.report import Status
from tcwebhook.tlscheck.trust import TrustStore
from tests.helpers.pki import NOW, Pki, make_dsa_leaf, make_leaf

ACCEPTED = HandshakeResult(connected=True, accepted=True, cipher="ECDHE-RSA-AES128-GCM-SHA256")
REFUSED = HandshakeResult(connected=True, accepted=False, error="protocol version")


def trusting(pki: Pki) -> TrustStore:
    return TrustStore(anchors=(pki.root.certificate,), source="test roots")


@pytest.mark.parametrize(
    ("offered", "status"),
    [
        ({"TLS 1.2": ACCEPTED, "TLS 1.3": ACCEPTED, "TLS 1.1": REFUSED}, Status.PASS),
        ({"TLS 1.2": REFUSED, "TLS 1.3": ACCEPTED}, Status.PASS),
        ({"TLS 1.2": ACCEPTED, "TLS 1.0": ACCEPTED}, Status.WARN),
        ({"TLS 1.2": REFUSED, "TLS 1.3": REFUSED, "TLS 1.0": ACCEPTED}, Status.FAIL),
    ],
)
def test_protocols_need_tls_1_2_or_1_3(offered, status):
    check = rules.protocols_check(offered)
    assert check.status is status
    if status is not Status.PASS:
        assert "ssl_protocols TLSv1.2 TLSv1.3" in check.fix


def test_a_full_chain_to_a_trusted_root_passes(pki: Pki):
    chain = [pki.leaf.certificate, pki.intermediate.certificate]
    path = rules.build_path(chain, trusting(pki))
    assert path.problem is None and path.anchor == pki.root.certificate
    check = rules.trust_check(chain, trusting(pki), "localhost", NOW)
    assert check.status is Status.PASS, check.finding


def test_a_leaf_sent_alone_is_a_missing_intermediate(pki: Pki):
    check = rules.trust_check([pki.leaf.certificate], trusting(pki), "localhost", NOW)
    assert check.status is Status.FAIL
    assert "missing intermediate" in check.finding
    assert check.fix == rules.FULL_CHAIN_FIX


def test_self_signed_unknown_root_and_wrong_host_are_named(pki: Pki):
    self_signed = make_leaf(pki.intermediate, pki.keys.other, self_signed=True)
    assert (
        "self-signed"
        in rules.trust_check([self_signed.certificate], trusting(pki), None, NOW).finding
    )
    nobody = TrustStore(anchors=(), source="empty store")
    chain = [pki.leaf.certificate, pki.intermediate.certificate]
    assert "unknown root" in rules.trust_check(chain, nobody, None, NOW).finding
    wrong_host = rules.trust_check(chain, trusting(pki), "erp.example.com", NOW)
    assert "hostname mismatch" in wrong_host.finding and "erp.example.com" in wrong_host.fix


def test_only_non_tls_answers_mean_the_port_speaks_no_tls():
    not_tls = HandshakeResult(connected=True, accepted=False, error="wrong version number")
    every = {version: not_tls for version in ("TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3")}
    assert rules.protocols_check(every).finding.startswith("this port does not speak TLS")
    # One version refused in the TLS way: it is a TLS server with the wrong protocols.
    mixed = {**every, "TLS 1.3": REFUSED}
    assert rules.protocols_check(mixed).finding.startswith("neither TLS 1.2 nor TLS 1.3")


def test_chain_order_warns_about_a_reversed_chain(pki: Pki):
    in_order = [pki.leaf.certificate, pki.intermediate.certificate]
    assert rules.chain_order_check(in_order, trusting(pki)).status is Status.PASS
    reversed_chain = [pki.leaf.certificate, pki.root.certificate, pki.intermediate.certificate]
    check = rules.chain_order_check(reversed_chain, trusting(pki))
    assert check.status is Status.WARN and "out of order" in check.finding


def test_expiry_fails_when_expired_and_warns_when_close(pki: Pki):
    expired = make_leaf(
        pki.intermediate,
        pki.keys.leaf,
        not_before=NOW - dt.timedelta(days=100),
        not_after=NOW - dt.timedelta(days=2),
    )
    assert rules.expiry_check([expired.certificate], NOW, 14).status is Status.FAIL
    soon = make_leaf(pki.intermediate, pki.keys.leaf, not_after=NOW + dt.timedelta(days=5))
    check = rules.expiry_check([soon.certificate], NOW, 14)
    assert check.status is Status.WARN and "days left" in check.finding
    assert rules.expiry_check([pki.leaf.certificate], NOW, 14).status is Status.PASS


def test_expiry_wording_counts_days_as_a_person_would(pki: Pki):
    def leaf(**dates: dt.datetime) -> x509.Certificate:
        return make_leaf(pki.intermediate, pki.keys.leaf, **dates).certificate  # type: ignore[arg-type]

    hours_ago = leaf(not_before=NOW - dt.timedelta(days=90), not_after=NOW - dt.timedelta(hours=5))
    finding = rules.expiry_check([hours_ago], NOW, 14).finding
    assert "(less than a day ago)" in finding and "0 days" not in finding
    assert (
        "(less than a day ago)" in rules.trust_check([hours_ago], trusting(pki), None, NOW).finding
    )
    tomorrow = leaf(not_after=NOW + dt.timedelta(days=1, hours=2))
    assert "(1 day left)" in rules.expiry_check([tomorrow], NOW, 14).finding


def test_a_certificate_not_valid_yet_points_at_the_start_date_and_this_clock(pki: Pki):
    future = make_leaf(
        pki.intermediate,
        pki.keys.leaf,
        not_before=NOW + dt.timedelta(days=2),
        not_after=NOW + dt.timedelta(days=90),
    ).certificate
    for row in (
        rules.expiry_check([future], NOW, 14),
        rules.trust_check([future, pki.intermediate.certificate], trusting(pki), None, NOW),
    ):
        assert row.status is Status.FAIL
        # The server's clock has no say in a certificate's dates: the checking machine's has.
        assert "server clock" not in row.fix
        assert "this machine's clock" in row.fix
        assert "renew" not in row.fix


def test_short_rsa_keys_fail(pki: Pki):
    weak = make_leaf(pki.intermediate, pki.keys.rsa1024)
    check = rules.key_signature_check([weak.certificate])
    assert check.status is Status.FAIL and "1024-bit RSA key" in check.finding
    strong = make_leaf(pki.intermediate, pki.keys.rsa2048)
    assert rules.key_signature_check([strong.certificate]).status is Status.PASS


def test_a_dsa_key_fails_without_a_deprecation_warning(pki: Pki):
    leaf = make_dsa_leaf(pki)
    with warnings.catch_warnings():
        # Whatever the suite's filters: check-tls must not touch cryptography's deprecated DSA API.
        warnings.simplefilter("error")
        check = rules.key_signature_check([leaf, pki.intermediate.certificate])
        match = rules.key_match_check(leaf, pki.keys.leaf)
    assert check.status is Status.FAIL and "DSA key" in check.finding
    assert match.status is Status.INFO


def test_ciphers_without_forward_secrecy_or_with_weak_suites_warn():
    protocols = {"TLS 1.2": ACCEPTED}
    static_rsa = HandshakeResult(connected=True, accepted=True, cipher="AES128-GCM-SHA256")
    check = rules.cipher_check(protocols, REFUSED, static_rsa, REFUSED)
    assert check.status is Status.WARN and "forward secrecy" in check.finding
    weak = HandshakeResult(connected=True, accepted=True, cipher="DES-CBC3-SHA")
    assert "DES-CBC3-SHA" in rules.cipher_check(protocols, ACCEPTED, None, weak).finding
    assert rules.cipher_check(protocols, ACCEPTED, None, REFUSED).status is Status.PASS


@pytest.mark.parametrize(
    ("anonymous", "authenticated", "status"),
    [
        (401, 200, Status.PASS),
        (401, 400, Status.PASS),  # the empty test body is refused once the credentials pass
        (200, 200, Status.FAIL),  # anyone can post orders
        (301, 200, Status.FAIL),  # Tradecloud never follows a redirect
        (404, 200, Status.FAIL),
        (401, 401, Status.FAIL),  # the credentials given are refused
        (403, 200, Status.WARN),
    ],
)
def test_endpoint_answers_are_judged_as_tradecloud_would(anonymous, authenticated, status):
    check = rules.endpoint_check(
        HttpResult(status=anonymous), HttpResult(status=authenticated), has_credentials=True
    )
    assert check.status is status


@pytest.mark.parametrize(
    ("code", "reaction"),
    [(200, "delivered"), (400, "gives up"), (500, "gives up"), (503, "retries"), (302, "redirect")],
)
def test_tradecloud_reaction_follows_the_retry_rule(code, reaction):
    assert reaction in rules.tradecloud_reaction(code)


def test_plain_http_and_key_match(pki: Pki):
    assert "closed" in rules.plain_http_check(HttpResult(refused=True), 80).finding
    open_port = rules.plain_http_check(HttpResult(status=200, reason="OK"), 80)
    assert "clear text" in open_port.fix
    assert rules.key_match_check(pki.leaf.certificate, pki.keys.leaf).status is Status.PASS
    assert rules.key_match_check(pki.leaf.certificate, pki.keys.other).status is Status.FAIL


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
    row = rules.endpoint_check(
        HttpResult(401, "Unauthorized", www_authenticate=challenge), None, False
    )
    assert seen in row.finding
