"""The fast path for order events gives exactly what the full parser gives, or steps aside."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from tcwebhook.errors import PayloadError
from tcwebhook.events import _fast_order_event, parse_webhook, parse_webhook_object

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
