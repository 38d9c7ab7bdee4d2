"""The fast path for order events gives exactly what the full parser gives, or steps aside."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcwebhook import changes
from tcwebhook.errors import PayloadError
from tcwebhook.events import (
    _fast_order_event,
    _without_escapes,
    change_key,
    check_depth,
    parse_webhook,
    parse_webhook_object,
)

FIXTURES = Path(__file__).parent / "fixtures" / "tradecloud"


def _full(body: bytes) -> Any:
    """The full parser's answer: the event's fields, or the error sentence."""
    try:
        event = parse_webhook_object(orjson.loads(body))
    except PayloadError as error:
        return ("error", str(error))
    except orjson.JSONDecodeError:
        return ("error", "json")
    return _fields(event)


def _fields(event: Any) -> tuple[Any, ...]:
    return (event.kind, event.event_name, event.message_id, event.resource_id, event.number,
            event.payload_key, event.changed_lines, event.documents)  # fmt: skip


def _order() -> dict[str, Any]:
    return json.loads((FIXTURES / "order-event.json").read_text())


def _variants() -> list[dict[str, Any] | list[Any] | str]:
    base = _order()
    variants: list[Any] = [base]

    def variant(change: Any) -> None:
        data = copy.deepcopy(base)
        change(data)
        variants.append(data)

    variant(lambda d: d.update(simpleOrderEvent=d.pop("orderEvent")))
    variant(lambda d: d.update(singleDeliveryOrderEvent=d.pop("orderEvent")))
    variant(lambda d: d.update(shipment={}))
    variant(lambda d: d.update(orderEvent=None))
    variant(lambda d: d.update(eventName=""))
    variant(lambda d: d.update(eventName=7))
    variant(lambda d: d.pop("eventName"))
    variant(lambda d: d.update(meta=None))
    variant(lambda d: d.update(meta=[]))
    variant(lambda d: d["meta"].update(messageId=""))
    variant(lambda d: d["meta"].update(messageId=5))
    variant(lambda d: d["meta"].update(messageId=None))
    variant(lambda d: (d.pop("meta"), d["orderEvent"].update(meta={"messageId": "inner"})))
    variant(lambda d: d["orderEvent"].update(orderId=12))
    variant(lambda d: d["orderEvent"].update(orderId=True))
    variant(lambda d: d["orderEvent"].update(orderId=None, id="fallback-id"))
    variant(lambda d: d["orderEvent"].update(buyerOrder=None))
    variant(lambda d: d["orderEvent"].update(buyerOrder="x"))
    variant(lambda d: d["orderEvent"]["buyerOrder"].update(purchaseOrderNumber=[1]))
    variant(lambda d: d["orderEvent"].update(lines=None))
    variant(lambda d: d["orderEvent"].update(lines=[1, {"id": "x"}]))
    variant(lambda d: d["orderEvent"]["lines"][0].update(buyerLine=None))
    variant(lambda d: d["orderEvent"]["lines"][0].update(buyerLine="odd"))
    variant(lambda d: d["orderEvent"]["lines"][0]["buyerLine"].update(position=""))
    variant(lambda d: d["orderEvent"]["lines"][0]["buyerLine"].update(position=10))
    variants += [[], "text", {}]
    return variants


@pytest.mark.parametrize("data", _variants())
def test_fast_path_agrees_with_the_full_parser(data: Any) -> None:
    body = orjson.dumps(data)
    fast = _fast_order_event(body)
    if fast is not None:
        assert _fields(fast) == _full(body)
        assert dict(fast.body or {}) == data  # the whole body is still there when asked for
    full = _full(body)
    if full[0] != "error":
        assert _fields(parse_webhook(body)) == full


@pytest.mark.parametrize("name", ["order-event.json", "single-delivery-order-event.json"])
def test_order_fixtures_take_the_fast_path(name: str) -> None:
    body = (FIXTURES / name).read_bytes()
    fast = _fast_order_event(body)
    assert fast is not None
    assert _fields(fast) == _full(body)


@pytest.mark.parametrize("name", ["shipment-event.json", "order-documents-event.json"])
def test_other_kinds_use_the_full_parser(name: str) -> None:
    assert _fast_order_event((FIXTURES / name).read_bytes()) is None


def test_invalid_utf8_in_an_unread_field_is_still_rejected() -> None:
    body = orjson.dumps(_order()).replace(b"Hull tubes", b"Hull \xff tubes")
    assert _fast_order_event(body) is None
    with pytest.raises(PayloadError, match="not UTF-8"):
        parse_webhook(body)


def test_invalid_json_in_an_unread_field_is_still_rejected() -> None:
    body = orjson.dumps(_order()).replace(b'"Hull tubes"', b"Hull tubes")
    assert _fast_order_event(body) is None
    with pytest.raises(PayloadError, match="not valid JSON"):
        parse_webhook(body)


# ------------------------------------------------------------------------------------------
# The change key's instant: a shortcut for Tradecloud's own form, the full parser for the rest


def _full_stamp(value: Any) -> str | None:
    instant = changes.parse_instant(value)
    return None if instant is None else f"{instant:%Y-%m-%dT%H:%M:%S.%fZ}"


@pytest.mark.parametrize(
    "value",
    [
        "2026-03-01T10:15:30.123Z",
        "2026-03-01T10:15:30Z",
        "2026-03-01T10:15:30.1z",
        "2026-03-01T10:15:30.123456789Z",  # cut to microseconds
        "2024-02-29T23:59:59.999999Z",
        "2023-02-29T10:00:00Z",  # no such day
        "2026-13-01T10:00:00Z",  # no such month
        "2026-03-01T24:00:00Z",
        "2026-03-01T10:15:60Z",  # a leap second: not an instant Python has
        "2026-03-01T11:15:30.5+01:00",  # another form: the full parser's
        "2026-03-01T10:15:30",
        " 2026-03-01T10:15:30Z ",
        "2026-03-01T10:15:30.Z",
        "0000-01-01T00:00:00Z",
        "yesterday",
        "",
    ],
)
def test_the_change_keys_instant_is_the_full_parsers(value: str) -> None:
    stamp = _full_stamp(value)
    expected = None if stamp is None else f"c:order:o-1@{stamp}"
    assert change_key("order", "o-1", value) == expected


@settings(max_examples=300, deadline=None)
@given(st.datetimes(timezones=st.just(UTC)), st.integers(0, 9), st.sampled_from("Zz"))
def test_any_utc_instant_gives_the_full_parsers_key(
    moment: datetime, digits: int, zone: str
) -> None:
    fraction = f"{moment.microsecond:06d}{moment.microsecond % 1000:03d}"[:digits]
    value = moment.replace(tzinfo=None).isoformat(timespec="seconds")
    value += (f".{fraction}" if digits else "") + zone
    assert change_key("order", "o-1", value) == f"c:order:o-1@{_full_stamp(value)}"


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 40),
    # JSON's escapes and what stands between them (a backslash before a bracket is no JSON)
    st.lists(st.sampled_from([b"\\\\", b'\\"', b"\\n", b"a", b'"', b"["]), max_size=60).map(
        b"".join
    ),
)
def test_escapes_are_cut_as_json_reads_them(letter_escapes: int, rest: bytes) -> None:
    # each a backslash and the next character, pairs from the left; past a few, another way
    body = b"\\n" * letter_escapes + rest
    structure = bytes.maketrans(b"{}", b"[]")
    other = bytes(b for b in range(256) if b not in b'{}[]"')
    expected = re.sub(rb"\\.?", b"", body, flags=re.DOTALL).translate(structure, other)
    assert _without_escapes(body).translate(structure, other) == expected


def test_an_escape_before_a_string_of_brackets_is_no_depth() -> None:
    # Depth 1: a newline in one string once turned the next string's brackets into containers.
    body = orjson.dumps({"note": "first line\nsecond line", "remark": "[" * 70})
    check_depth(body, 64)


# ------------------------------------------------------------------------------------------
# The depth limit counts containers, never the brackets, quotes and backslashes inside strings

# Every kind of escape: quotes and backslashes, and those that end next to a quote once the
# letters around them are set aside (\n, \t, \u0001, and \u00d8 where non-ASCII is escaped).
_TRICKY = st.text(alphabet='[]{}"\\ab\n\t\x01Ø', max_size=8)
_JSON = st.recursive(
    st.none() | st.integers(-1000, 1000) | _TRICKY,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TRICKY, inner, max_size=4),
    max_leaves=40,
)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


@settings(max_examples=400, deadline=None)
@given(_JSON, st.integers(1, 8), st.booleans())
def test_the_depth_check_counts_containers_only(value: Any, limit: int, ascii: bool) -> None:
    body = json.dumps(value).encode() if ascii else orjson.dumps(value)
    try:
        check_depth(body, limit)
    except PayloadError:
        refused = True
    else:
        refused = False
    assert refused == (_depth(value) > limit), (body, _depth(value))
