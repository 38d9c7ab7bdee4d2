"""Every request the receiver answers, also the refused ones, and TLS handshakes that fail.

Pure, no I/O: ``records`` (what one request leaves behind, never a credential), ``explain`` (a
refusal's reason, fix and Tradecloud's reaction), ``tls`` (a failed handshake for a person). A
stored event's row is its own record; only refused requests and failed handshakes are written.
"""

from tcwebhook.requestlog.explain import Explanation, PathAuth, ReceiverFacts, explain
from tcwebhook.requestlog.records import (
    JSON_KEYS,
    AuthPresence,
    RequestRecord,
    Tradecloud,
    auth_presence,
    body_excerpt,
    mask_credentials,
    refused_record,
    stored_record,
    tradecloud_reaction,
)
from tcwebhook.requestlog.tls import (
    NOT_VISIBLE_BEHIND_PROXY,
    HandshakeFailure,
    explain_handshake,
    handshake_record,
    name_covered,
)

__all__ = [
    "JSON_KEYS",
    "NOT_VISIBLE_BEHIND_PROXY",
    "AuthPresence",
    "Explanation",
    "HandshakeFailure",
    "PathAuth",
    "ReceiverFacts",
    "RequestRecord",
    "Tradecloud",
    "auth_presence",
    "body_excerpt",
    "explain",
    "explain_handshake",
    "handshake_record",
    "mask_credentials",
    "name_covered",
    "refused_record",
    "stored_record",
    "tradecloud_reaction",
]
