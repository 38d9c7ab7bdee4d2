"""Tradecloud's TLS rules as pure functions: probe results and certificates in, report rows out.

One module per check, as the report has one row per check; this package re-exports them all.
"""

from __future__ import annotations

from tcwebhook.tlscheck.rules.chain import (
    FULL_CHAIN_FIX,
    JVM_NOTE,
    ChainPath,
    build_path,
    chain_order_check,
    expiry_check,
    trust_check,
)
from tcwebhook.tlscheck.rules.ciphers import cipher_check
from tcwebhook.tlscheck.rules.endpoint import endpoint_check, plain_http_check, tradecloud_reaction
from tcwebhook.tlscheck.rules.keypair import key_match_check
from tcwebhook.tlscheck.rules.keys import WEAK_HASHES, key_signature_check
from tcwebhook.tlscheck.rules.protocols import protocols_check

__all__ = [
    "FULL_CHAIN_FIX",
    "JVM_NOTE",
    "WEAK_HASHES",
    "ChainPath",
    "build_path",
    "chain_order_check",
    "cipher_check",
    "endpoint_check",
    "expiry_check",
    "key_match_check",
    "key_signature_check",
    "plain_http_check",
    "protocols_check",
    "tradecloud_reaction",
    "trust_check",
]
