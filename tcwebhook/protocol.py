"""Tradecloud's rules, written once: event kinds and their payload keys, which answers the
sender retries, and the ``Authorization`` header. Pure; every other module asks here."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

Resource = Literal["order", "shipment"]


class EventKind(StrEnum):
    """What a stored event is: a webhook body, a GET notification, or a change found by polling."""

    ORDER = "order"
    SINGLE_DELIVERY_ORDER = "single_delivery_order"
    ORDER_DOCUMENTS = "order_documents"
    SHIPMENT = "shipment"
    ORDER_NOTIFICATION = "order_notification"
    SHIPMENT_NOTIFICATION = "shipment_notification"
    # Stored by `tcwebhook reconcile` for a change no webhook delivered (the polled object).
    ORDER_RECOVERED = "order_recovered"
    SHIPMENT_RECOVERED = "shipment_recovered"

    @property
    def resource(self) -> Resource:
        shipment_kinds = (
            EventKind.SHIPMENT,
            EventKind.SHIPMENT_NOTIFICATION,
            EventKind.SHIPMENT_RECOVERED,
        )
        return "shipment" if self in shipment_kinds else "order"

    @property
    def is_notification(self) -> bool:
        return self in (EventKind.ORDER_NOTIFICATION, EventKind.SHIPMENT_NOTIFICATION)


# ------------------------------------------------------------------------------------------
# Kinds and payload keys (docs/tradecloud.md#webhook-bodies)

# Payload key → kind, the current key of each kind first. Legacy names
# (docs/tradecloud.md#ambiguities) map to the current kinds.
PAYLOAD_KEYS: dict[str, EventKind] = {
    "orderEvent": EventKind.ORDER,
    "singleDeliveryOrderEvent": EventKind.SINGLE_DELIVERY_ORDER,
    "simpleOrderEvent": EventKind.SINGLE_DELIVERY_ORDER,
    "orderDocumentsEvent": EventKind.ORDER_DOCUMENTS,
    "shipment": EventKind.SHIPMENT,
    "shipmentEvent": EventKind.SHIPMENT,
}

# Kind → the key Tradecloud sends it under today.
PAYLOAD_KEY_OF_KIND: dict[EventKind, str] = {}
for _key, _kind in PAYLOAD_KEYS.items():
    PAYLOAD_KEY_OF_KIND.setdefault(_kind, _key)
del _key, _kind

ORDER_PAYLOAD_KEYS: tuple[str, ...] = tuple(
    key for key, kind in PAYLOAD_KEYS.items() if kind.resource == "order"
)
SHIPMENT_PAYLOAD_KEYS: tuple[str, ...] = tuple(
    key for key, kind in PAYLOAD_KEYS.items() if kind.resource == "shipment"
)
# The keys whose payload is an order with lines (the documents event carries only documents).
ORDER_LINE_PAYLOAD_KEYS: tuple[str, ...] = tuple(
    key for key in ORDER_PAYLOAD_KEYS if PAYLOAD_KEYS[key] is not EventKind.ORDER_DOCUMENTS
)

# The kinds a webhook (POST body or GET notification) can carry; the rest come from polling.
WEBHOOK_KINDS: tuple[EventKind, ...] = (
    *PAYLOAD_KEY_OF_KIND,
    EventKind.ORDER_NOTIFICATION,
    EventKind.SHIPMENT_NOTIFICATION,
)


# ------------------------------------------------------------------------------------------
# Which answers the sender retries (docs/tradecloud.md#status-codes-and-retries)

Verdict = Literal["delivered", "dropped", "retried", "undocumented", "no-answer"]


def verdict(status: int | None) -> Verdict:
    """What Tradecloud's sender does with an answer (rule since 2025-07).

    2xx delivered; 4xx and 500 dropped for good; above 500 retried with back-off; no answer or
    anything else: undocumented.
    """
    if status is None:
        return "no-answer"
    if 200 <= status < 300:
        return "delivered"
    if 400 <= status < 500 or status == 500:
        return "dropped"
    if status > 500:
        return "retried"
    return "undocumented"


def is_retried(status: int | None) -> bool:
    """Whether Tradecloud sends again: above 500, and (we assume) when there was no answer."""
    return status is None or verdict(status) == "retried"


# ------------------------------------------------------------------------------------------
# The Authorization header (docs/tradecloud.md#webhook-authentication, #api-authentication)


@dataclass(frozen=True)
class Authorization:
    """A parsed ``Authorization`` value; ``credentials`` is a secret: never log it."""

    scheme: str  # lower case: "basic", "bearer", ...
    credentials: str


def parse_authorization(header: str | None) -> Authorization | None:
    """The scheme and credentials of a header value; None when the header is missing or blank."""
    if not header:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    return Authorization(scheme.lower(), credentials.strip()) if scheme else None


def bearer_token(header: str | None) -> str | None:
    """The token of ``Bearer <token>``; None for another scheme or no token."""
    parsed = parse_authorization(header)
    if parsed is None or parsed.scheme != "bearer" or not parsed.credentials:
        return None
    return parsed.credentials


def basic_pair(credentials: str) -> bytes | None:
    """The ``user:password`` bytes of Basic credentials; None when they are not base64.

    Raw header bytes that are not UTF-8 arrive as surrogates: they make None, not an exception.
    """
    try:
        return base64.b64decode(credentials.encode("utf-8", "surrogateescape"), validate=True)
    except (binascii.Error, ValueError):
        return None


def without_bearer(value: str) -> str:
    """A token given with or without its ``Bearer`` prefix (any case), without it."""
    value = value.strip()
    if value[:7].lower() == "bearer ":
        value = value[7:].strip()
    return value


def bearer_header(token: str) -> str:
    return f"Bearer {token}"


def basic_header(username: str, password: str) -> str:
    pair = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")
