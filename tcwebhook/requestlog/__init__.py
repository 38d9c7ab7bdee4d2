"""Every request the receiver answers, also the refused ones, and TLS handshakes that fail.

Pure, no I/O: ``records`` (what one request leaves behind, never a credential), ``explain`` (a
refusal's reason, fix and Tradecloud's reaction), ``tls`` (a failed handshake for a person) and
``aggregate`` (identical failures merged, writes rate-limited, retention). A stored event's row is
its own record; only refused requests and failed handshakes are written (docs/requests.md).
"""

from tcwebhook.requestlog.aggregate import Aggregator, Limits, Write, oldest_kept, to_delete
from tcwebhook.requestlog.explain import (
    Explanation,
    PathAuth,
    ReceiverFacts,
    explain,
    stored_auth,
)
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
    "Aggregator",
    "AuthPresence",
    "Explanation",
    "HandshakeFailure",
    "Limits",
    "PathAuth",
    "ReceiverFacts",
    "RequestRecord",
    "Tradecloud",
    "Write",
    "auth_presence",
    "body_excerpt",
    "explain",
    "explain_handshake",
    "handshake_record",
    "mask_credentials",
    "name_covered",
    "oldest_kept",
    "refused_record",
    "stored_auth",
    "stored_record",
    "to_delete",
    "tradecloud_reaction",
]
