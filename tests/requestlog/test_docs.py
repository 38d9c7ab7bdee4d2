"""docs/requests.md stays true: every cause, every TLS code and every default is on the page."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from tcwebhook.requestlog import Limits, explain_handshake
from tcwebhook.requestlog.explain import CAUSES
from tcwebhook.requestlog.records import EXCERPT_BYTES, JSON_KEYS
from tcwebhook.requestlog.tls import _BY_REASON

PAGE = (Path(__file__).resolve().parents[2] / "docs" / "requests.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("cause", CAUSES)
def test_every_cause_is_documented(cause: str) -> None:
    assert f"`{cause}`" in PAGE


def tls_codes() -> set[str]:
    codes = {explain_handshake(TimeoutError()).code}
    for reason in _BY_REASON:
        codes.add(explain_handshake(ssl.SSLError(1, f"[SSL: {reason}] x")).code)
    return codes


@pytest.mark.parametrize("code", sorted(tls_codes()))
def test_every_tls_code_is_documented(code: str) -> None:
    if code != "other":  # the fallback quotes OpenSSL's own words
        assert f"`{code}`" in PAGE


@pytest.mark.parametrize("key", JSON_KEYS)
def test_every_json_key_is_documented(key: str) -> None:
    assert f"`{key}`" in PAGE


def test_the_defaults_in_the_limits_table_are_the_code_s() -> None:
    limits = Limits()
    rows = {
        "| window |": f"{limits.window:g} s",
        "| update interval |": f"{limits.update_interval:g} s",
        "| rate, burst |": f"{limits.rate:g} writes/s, {limits.burst}",
        "| distinct failures held |": f"{limits.max_groups}",
        "| rows kept |": f"{limits.max_rows:,}",
        "| age |": f"{limits.max_age / 86400:g} days",
        "| excerpt |": f"{EXCERPT_BYTES} bytes",
    }
    for row, default in rows.items():
        line = next(line for line in PAGE.splitlines() if line.startswith(row))
        assert f"| {default} |" in line, row
