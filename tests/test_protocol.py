"""Tradecloud's rules as tcwebhook writes them down once: kinds and payload keys, retries,
and the Authorization header."""

from __future__ import annotations

import pytest

from tcwebhook import protocol
from tcwebhook.protocol import EventKind


def test_every_payload_key_maps_to_its_kind_legacy_keys_included() -> None:
    assert protocol.PAYLOAD_KEYS == {
        "orderEvent": EventKind.ORDER,
        "singleDeliveryOrderEvent": EventKind.SINGLE_DELIVERY_ORDER,
        "simpleOrderEvent": EventKind.SINGLE_DELIVERY_ORDER,
        "orderDocumentsEvent": EventKind.ORDER_DOCUMENTS,
        "shipment": EventKind.SHIPMENT,
        "shipmentEvent": EventKind.SHIPMENT,
    }


def test_each_webhook_kind_is_sent_under_its_current_key_never_a_legacy_one() -> None:
    assert protocol.PAYLOAD_KEY_OF_KIND == {
        EventKind.ORDER: "orderEvent",
        EventKind.SINGLE_DELIVERY_ORDER: "singleDeliveryOrderEvent",
        EventKind.ORDER_DOCUMENTS: "orderDocumentsEvent",
        EventKind.SHIPMENT: "shipment",
    }
    for kind, key in protocol.PAYLOAD_KEY_OF_KIND.items():
        assert protocol.PAYLOAD_KEYS[key] is kind


def test_keys_split_by_resource() -> None:
    assert set(protocol.ORDER_PAYLOAD_KEYS) == {
        "orderEvent",
        "singleDeliveryOrderEvent",
        "simpleOrderEvent",
        "orderDocumentsEvent",
    }
    assert set(protocol.SHIPMENT_PAYLOAD_KEYS) == {"shipment", "shipmentEvent"}
    assert "orderDocumentsEvent" not in protocol.ORDER_LINE_PAYLOAD_KEYS
    assert {kind.resource for kind in EventKind} == {"order", "shipment"}


@pytest.mark.parametrize(
    ("status", "verdict", "retried"),
    [
        (200, "delivered", False),
        (202, "delivered", False),
        (400, "dropped", False),
        (401, "dropped", False),
        (404, "dropped", False),
        (500, "dropped", False),
        (501, "retried", True),
        (503, "retried", True),
        (504, "retried", True),
        (302, "undocumented", False),
        (None, "no-answer", True),
    ],
)
def test_tradecloud_retries_above_500_only(
    status: int | None, verdict: protocol.Verdict, retried: bool
) -> None:
    assert protocol.verdict(status) == verdict
    assert protocol.is_retried(status) is retried


@pytest.mark.parametrize(
    ("username", "password"), [("erp", "s3cret:with:colons"), ("användare", "lösenord")]
)
def test_basic_header_round_trip(username: str, password: str) -> None:
    header = protocol.basic_header(username, password)
    parsed = protocol.parse_authorization(header)
    assert parsed is not None and parsed.scheme == "basic"
    assert protocol.basic_pair(parsed.credentials) == f"{username}:{password}".encode()


def test_bearer_header_round_trip_with_any_case_and_spacing() -> None:
    assert protocol.bearer_token(protocol.bearer_header("abc.def")) == "abc.def"
    assert protocol.bearer_token("  bEaReR   abc.def  ") == "abc.def"
    assert protocol.without_bearer("Bearer abc") == protocol.without_bearer(" abc ") == "abc"


@pytest.mark.parametrize("header", [None, "", "   ", "Bearer", "Bearer   ", "Basic abc", "abc"])
def test_no_bearer_token_in_malformed_or_other_headers(header: str | None) -> None:
    assert protocol.bearer_token(header) is None


@pytest.mark.parametrize(
    "credentials",
    [
        "not base64!",
        "YWJj=ZGVm",  # padding in the middle
        "dXNlcjpwYXNz\udcff",  # a raw non-UTF-8 byte, as the server decodes it
        "dXNlcjpwYXNzw6k=é",
    ],
)
def test_malformed_or_non_ascii_basic_credentials_are_refused_not_raised(credentials: str) -> None:
    assert protocol.basic_pair(credentials) is None


def test_missing_header_parses_to_nothing() -> None:
    assert protocol.parse_authorization(None) is None
    assert protocol.parse_authorization("   ") is None
