"""Parse and validate Tradecloud webhook bodies and GET notifications into typed events. Pure.

The parser is strict about structure (one payload key, right types) and lenient about content:
unknown fields and unknown event names are kept and accepted, since Tradecloud may add them at any
time (docs/tradecloud.md#delivery) and a 4xx would lose the event for good.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import msgspec
import orjson

from tcwebhook import changes
from tcwebhook.errors import PayloadError
from tcwebhook.protocol import ORDER_LINE_PAYLOAD_KEYS, PAYLOAD_KEYS, EventKind, Resource

ORDER_EVENT_NAMES: tuple[str, ...] = (
    "OrderIssuedByBuyer", "OrderLinesIssuedByBuyer", "OrderLinesReissuedByBuyer",
    "OrderLinesUpdatedByBuyer", "OrderLinesAcceptedBySupplier", "OrderLinesRejectedBySupplier",
    "OrderLinesConfirmedByBuyer", "OrderLinesConfirmedBySupplier",
    "OrderChangesProposedBySupplier", "OrderChangesProposalApprovedByBuyer",
    "OrderChangesProposalRejectedByBuyer", "OrderLinesUpdatedBySupplier",
    "OrderLinesItemDetailsChanged", "OrderLinesReopenRequestedByBuyer",
    "OrderLinesReopenRequestRevertedByBuyer", "OrderLinesReopenRequestApprovedBySupplier",
    "OrderLinesReopenRequestRejectedBySupplier", "OrderLinesReopenRequestedBySupplier",
    "OrderLinesReopenRequestRevertedBySupplier", "OrderLinesReopenRequestApprovedByBuyer",
    "OrderLinesReopenRequestRejectedByBuyer", "OrderLinesReconfirmationRequestedByBuyer",
    "OrderLinesReconfirmedBySupplier", "OrderLinesCancelledByBuyer",
    "CancelledOrderLinesRevertedByBuyer", "OrderLinesCompletedByBuyer",
    "CompletedOrderLinesRevertedByBuyer", "OrderLinesMarkedAsOpenByBuyer",
    "OrderLinesMarkedAsOpenBySupplier", "OrderLinesShippedByBuyer",
    "OrderLinesMarkedAsDeliveredByBuyer", "OrderLinesMarkedAsDeliveredBySupplier",
    "OrderLinesDeliveryHistoryAppendedByBuyer", "OrderLinesDeliveryHistorySetByBuyer",
    "OrderLinesDeliveryScheduleLogisticsUpdatedByBuyer",
    "OrderLinesDeliveryScheduleLogisticsUpdatedBySupplier",
    "OrderLinesShipmentRescheduleRequestedBySupplier",
    "OrderLinesShipmentRescheduleApprovedByBuyer", "OrderLinesShipmentRescheduleRejectedByBuyer",
    "OrderContactReassignedByBuyer", "OrderContactReassignedBySupplier", "OrderResentByBuyer",
    "OrderResentBySupplier",
)  # fmt: skip
ORDER_DOCUMENTS_EVENT_NAMES: tuple[str, ...] = (
    "OrderDocumentsAttachedByBuyer",
    "OrderDocumentsAttachedBySupplier",
)
SHIPMENT_EVENT_NAMES: tuple[str, ...] = (
    "ShipmentIssuedBySupplier", "ShipmentReissuedBySupplier", "ShipmentApprovedByBuyer",
    "ShipmentRejectedByBuyer", "ShipmentHeaderUpdatedBySupplier",
    "ShipmentDocumentAttachedByBuyer", "ShipmentDocumentAttachedBySupplier",
    "ShipmentResentByBuyer",
)  # fmt: skip
LEGACY_EVENT_NAMES: tuple[str, ...] = (
    "OrderSynced", "OrderReissuedByBuyer", "OrderLinesItemDetailsChangedBySupplier",
    "OrderLinesItemChangedBySupplier", "OrderCustomLabelsUpdatedByBuyer",
    "OrderCustomLabelsUpdatedBySupplier", "ShipmentDespatchedBySupplier",
)  # fmt: skip
KNOWN_EVENT_NAMES = frozenset(
    ORDER_EVENT_NAMES + ORDER_DOCUMENTS_EVENT_NAMES + SHIPMENT_EVENT_NAMES + LEGACY_EVENT_NAMES
)


@dataclass(frozen=True)
class DocumentRef:
    code: str | None
    name: str | None
    object_id: str | None
    url: str | None


@dataclass(frozen=True)
class WebhookEvent:
    """One webhook as received: what it is about, and the lines it changed."""

    kind: EventKind
    event_name: str | None
    message_id: str | None
    resource_id: str | None  # Tradecloud order or shipment id
    number: str | None  # purchase order number or shipment number
    payload_key: str | None
    body: Mapping[str, Any] | None  # the parsed body; None for a GET notification
    changed_lines: tuple[str, ...] = ()
    documents: tuple[DocumentRef, ...] = ()
    # The object's lastUpdatedAt as sent (order header, shipment meta): which change this is.
    last_updated_at: str | None = None

    @property
    def change_key(self) -> str | None:
        """The change this event carries, for the kinds a poll can also find; else None."""
        if self.kind not in _CHANGE_KINDS or not self.resource_id:
            return None
        return change_key(self.kind.resource, self.resource_id, self.last_updated_at)

    @property
    def known_event_name(self) -> bool:
        return self.event_name is None or self.event_name in KNOWN_EVENT_NAMES

    @property
    def payload(self) -> Mapping[str, Any]:
        assert self.body is not None and self.payload_key is not None
        payload: Mapping[str, Any] = self.body[self.payload_key]
        return payload


_CHANGE_KINDS = frozenset(
    {
        EventKind.ORDER,
        EventKind.SINGLE_DELIVERY_ORDER,
        EventKind.SHIPMENT,
        EventKind.ORDER_RECOVERED,
        EventKind.SHIPMENT_RECOVERED,
    }
)


def change_key(resource: Resource, resource_id: str, last_updated_at: Any) -> str | None:
    """``c:order:<id>@<instant>``: one change of one object, whether a webhook or a poll saw it.

    The instant is normalised (UTC, microseconds), so ``…11.2Z`` and ``…11.200Z`` agree and
    the keys of one object sort by time. None when the timestamp is missing or unreadable.
    """
    stamp = _utc_stamp(last_updated_at) if isinstance(last_updated_at, str) else None
    if stamp is None:
        instant = changes.parse_instant(last_updated_at)
        if instant is None:
            return None
        stamp = f"{instant:%Y-%m-%dT%H:%M:%S.%fZ}"
    return f"c:{resource}:{resource_id}@{stamp}"


# How Tradecloud writes its timestamps: UTC, 'Z', any number of fractional digits. (Years before
# 1000 are the full parser's: strftime does not pad them, and keys already stored say so.)
_UTC_INSTANT = re.compile(r"([1-9]\d{3})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?[Zz]\Z")


def _utc_stamp(value: str) -> str | None:
    """``change_key``'s instant for a timestamp already in UTC, without building a datetime to
    format it (this runs for every order a webhook brings); None for any other form, which the
    full parser reads. The same text as the full parser's for every value this accepts."""
    match = _UTC_INSTANT.match(value)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction = match.groups()
    try:  # an impossible date is unreadable, as for the full parser
        datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
    except ValueError:
        return None
    micros = (fraction or "")[:6].ljust(6, "0")
    return f"{year}-{month}-{day}T{hour}:{minute}:{second}.{micros}Z"


def decode_json(body: bytes) -> Any:
    """The JSON value of a UTF-8 body, or a PayloadError saying where it breaks."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as bad:
            raise PayloadError(
                f"body is not UTF-8 text (invalid byte at offset {bad.start}); "
                "Tradecloud sends UTF-8 JSON"
            ) from None
        raise PayloadError(
            f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


def parse_webhook(body: bytes) -> WebhookEvent:
    """Validate a POST/PUT webhook body (order, order documents or shipment)."""
    if not body.strip():
        raise PayloadError("body is empty; expected a Tradecloud webhook JSON object")
    fast = _fast_order_event(body)
    if fast is not None:
        return fast
    data = decode_json(body)
    return parse_webhook_object(data)


def parse_webhook_object(data: Any) -> WebhookEvent:
    if not isinstance(data, dict):
        raise PayloadError(f"body must be a JSON object, not {_json_type(data)}")
    present = [key for key in PAYLOAD_KEYS if key in data]
    if not present:
        expected = ", ".join(PAYLOAD_KEYS)
        raise PayloadError(f"body has no payload key; expected exactly one of: {expected}")
    if len(present) > 1:
        raise PayloadError(
            f"body has more than one payload key ({', '.join(present)}); expected exactly one"
        )
    payload_key = present[0]
    payload = data[payload_key]
    if not isinstance(payload, dict):
        raise PayloadError(f"'{payload_key}' must be a JSON object, not {_json_type(payload)}")
    event_name = data.get("eventName")
    if not isinstance(event_name, str) or not event_name:
        raise PayloadError("'eventName' must be a non-empty string")
    kind = PAYLOAD_KEYS[payload_key]
    message_id = _message_id(data, payload)
    if kind is EventKind.SHIPMENT:
        return _shipment_event(data, payload_key, payload, event_name, message_id)
    return _order_event(data, kind, payload_key, payload, event_name, message_id)


# ----------------------------------------------------------------------------------------------
# Receive-time limits: what a sink could never carry is refused with a 400 naming the limit, rather
# than acknowledged and then retried for hours (Tradecloud's payloads nest about 10 levels deep and
# their ids are well under 100 characters).

# Objects become arrays (their depth is all that counts); all but brackets and quotes go.
_STRUCTURE = bytes.maketrans(b"{}", b"[]")
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'{}[]"')
_FEW_ESCAPES = 32
_STRING = re.compile(rb'"[^"]*"')


def check_depth(body: bytes, max_depth: int) -> None:
    """A PayloadError if objects and arrays in the JSON ``body`` nest deeper than ``max_depth``."""
    if b"\\" in body:
        # Escapes go first, from the body itself: once the letters are gone, the backslash of a
        # \n or a \u00d8 that ends a string would seem to escape the string's closing quote.
        body = _without_escapes(body)
    kept = body.translate(_STRUCTURE, _NOT_STRUCTURE)
    if kept.count(b"[") <= max_depth:
        return  # too few containers to nest that deep (brackets in strings counted too)
    structure = _outside_strings(kept)
    too_deep = b"[" * (max_depth + 1)
    for _ in range(max_depth):
        # A run of openers longer than the limit proves it; else drop the innermost level.
        if too_deep in structure:
            break
        inner = structure.replace(b"[]", b"")
        if not inner or len(inner) == len(structure):
            return  # within the limit (or not JSON: the parser says so)
        structure = inner
    raise PayloadError(
        f"body nests objects and arrays deeper than server.limits.max_json_depth "
        f"({max_depth} levels); Tradecloud's events nest about 10 levels"
    )


def _without_escapes(body: bytes) -> bytes:
    """``body`` with no escape left that could end or open a string, for ``_NOT_STRUCTURE``'s
    translation. Escapes are read from the left, as JSON reads them. A few are cut out by slicing,
    each a backslash and the character after it (most bodies have none or a handful); past that,
    two passes in C over the rest, whose cost does not grow with them: escaped backslashes, then
    escaped quotes. The translation drops what other escapes leave, a backslash and letters."""
    pieces, start = [], 0
    for _ in range(_FEW_ESCAPES):
        at = body.find(b"\\", start)
        if at == -1:
            pieces.append(body[start:])
            return b"".join(pieces)
        pieces.append(body[start:at])
        start = at + 2
    pieces.append(body[start:].replace(b"\\\\", b"").replace(b'\\"', b""))
    return b"".join(pieces)


def _outside_strings(kept: bytes) -> bytes:
    """``kept`` (a JSON text's brackets and quotes, without escapes) without its strings, which
    hold brackets at most: linear passes in C, which cost less than parsing."""
    kept = kept.replace(b'""', b"")
    return _STRING.sub(b"", kept) if b'"' in kept else kept


def check_lengths(event: WebhookEvent, max_length: int) -> None:
    """A PayloadError if a name or id of ``event`` (used as keys and in sinks) is too long."""
    fields = (
        ("eventName", event.event_name),
        ("meta.messageId", event.message_id),
        ("the order or shipment id", event.resource_id),
        ("the order or shipment number", event.number),
    )
    for name, value in fields:
        if value is not None and len(value) > max_length:
            raise _too_long(name, max_length)
    for key in event.changed_lines:
        if len(key) > max_length:
            raise _too_long("a line position or id", max_length)


def _too_long(name: str, max_length: int) -> PayloadError:
    return PayloadError(
        f"{name} is longer than server.limits.max_id_length ({max_length} characters)"
    )


def parse_notification(resource: Resource, resource_id: str) -> WebhookEvent:
    """A legacy GET webhook: only the id of the order or shipment that changed."""
    resource_id = resource_id.strip()
    if not resource_id:
        raise PayloadError(f"the GET webhook carries no {resource} id")
    if len(resource_id) > 512:
        raise PayloadError(f"the {resource} id is longer than 512 characters")
    kind = EventKind.ORDER_NOTIFICATION if resource == "order" else EventKind.SHIPMENT_NOTIFICATION
    return WebhookEvent(kind, None, None, resource_id, None, None, None)


def _message_id(data: Mapping[str, Any], payload: Mapping[str, Any]) -> str | None:
    # meta sits at the top level in the receive docs, inside the event in others
    # (docs/tradecloud.md#ambiguities).
    for meta in (data.get("meta"), payload.get("meta")):
        if meta is None:
            continue
        if not isinstance(meta, dict):
            raise PayloadError(f"'meta' must be a JSON object, not {_json_type(meta)}")
        message_id = meta.get("messageId")
        if message_id is not None:
            if not isinstance(message_id, str):
                raise PayloadError("'meta.messageId' must be a string")
            return message_id or None
    return None


def _order_event(
    data: Mapping[str, Any],
    kind: EventKind,
    payload_key: str,
    payload: Mapping[str, Any],
    event_name: str,
    message_id: str | None,
) -> WebhookEvent:
    lines = payload.get("lines", [])
    if not isinstance(lines, list):
        raise PayloadError(f"'{payload_key}.lines' must be an array, not {_json_type(lines)}")
    order_id = _optional_string(payload, ("orderId", "id"), payload_key)
    buyer_order = payload.get("buyerOrder")
    if buyer_order is not None and not isinstance(buyer_order, dict):
        raise PayloadError(f"'{payload_key}.buyerOrder' must be a JSON object")
    number = _optional_string(
        buyer_order or {}, ("purchaseOrderNumber",), f"{payload_key}.buyerOrder"
    )
    keys = tuple(changes.order_line_key(line) for line in changes.order_event_lines(payload))
    documents: tuple[DocumentRef, ...] = ()
    if kind is EventKind.ORDER_DOCUMENTS:
        documents = tuple(_document_ref(d) for d in changes.find_documents(payload))
    last_updated_at = payload.get("lastUpdatedAt")
    return WebhookEvent(
        kind,
        event_name,
        message_id,
        order_id,
        number,
        payload_key,
        data,
        keys,
        documents,
        last_updated_at if isinstance(last_updated_at, str) else None,
    )


def _shipment_event(
    data: Mapping[str, Any],
    payload_key: str,
    payload: Mapping[str, Any],
    event_name: str,
    message_id: str | None,
) -> WebhookEvent:
    for name in ("lines", "loadCarriers"):
        if not isinstance(payload.get(name, []), list):
            raise PayloadError(f"'{payload_key}.{name}' must be an array")
    shipment_id = _optional_string(payload, ("id",), payload_key)
    supplier = payload.get("supplierShipment")
    number = None
    if isinstance(supplier, dict):
        number = _optional_string(supplier, ("shipmentNumber",), f"{payload_key}.supplierShipment")
    changed = changes.shipment_line_changes(payload).changed
    documents = tuple(_document_ref(d) for _, d in changes.shipment_documents(payload))
    meta = payload.get("meta")
    last_updated_at = meta.get("lastUpdatedAt") if isinstance(meta, dict) else None
    if not isinstance(last_updated_at, str):
        last_updated_at = payload.get("lastUpdatedAt")  # flattened (docs/tradecloud.md#ambiguities)
    return WebhookEvent(
        EventKind.SHIPMENT,
        event_name,
        message_id,
        shipment_id,
        number,
        payload_key,
        data,
        tuple(item.key for item in changed),
        documents,
        last_updated_at if isinstance(last_updated_at, str) else None,
    )


def _optional_string(obj: Mapping[str, Any], names: tuple[str, ...], where: str) -> str | None:
    for name in names:
        value = obj.get(name)
        if value is None:
            continue
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)
        raise PayloadError(f"'{where}.{name}' must be a string, not {_json_type(value)}")
    return None


def _document_ref(document: Mapping[str, Any]) -> DocumentRef:
    def text(name: str) -> str | None:
        value = document.get(name)
        return str(value) if value not in (None, "") else None

    return DocumentRef(text("code"), text("name"), text("objectId"), text("url"))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)


# ----------------------------------------------------------------------------------------------
# Fast path for order events, the bulk of the traffic. Building Python objects for a whole 50 KB
# body dominated the cost of receiving it; msgspec decodes only the fields below and skips the
# rest (still checking it is valid JSON). It accepts only what the full parser would accept with
# the same result; anything unusual returns None and goes through the full parser, which also
# words the errors. The full body is parsed on first use only (nothing in the receive path does).
# docs/performance-notes.md#3-a-fast-path-for-parsing-order-events


class _BuyerLine(msgspec.Struct):
    position: Any = None


class _OrderLine(msgspec.Struct):
    id: Any = None
    buyerLine: _BuyerLine | None = None


class _BuyerOrder(msgspec.Struct):
    purchaseOrderNumber: Any = None


class _Meta(msgspec.Struct):
    messageId: Any = None


class _OrderPayload(msgspec.Struct):
    orderId: Any = None
    id: Any = None
    buyerOrder: _BuyerOrder | None = None
    lines: list[_OrderLine] = []  # msgspec copies mutable defaults per instance
    meta: _Meta | None = None
    lastUpdatedAt: Any = None


class _OrderBody(msgspec.Struct):
    eventName: Any = msgspec.UNSET
    meta: _Meta | None = None
    orderEvent: _OrderPayload | msgspec.UnsetType = msgspec.UNSET
    singleDeliveryOrderEvent: _OrderPayload | msgspec.UnsetType = msgspec.UNSET
    simpleOrderEvent: _OrderPayload | msgspec.UnsetType = msgspec.UNSET
    orderDocumentsEvent: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    shipment: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    shipmentEvent: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET


_ORDER_DECODER = msgspec.json.Decoder(_OrderBody)


class _LazyBody(Mapping[str, Any]):
    """The parsed body as a read-only mapping, parsed by the full parser on first access."""

    __slots__ = ("_data", "_raw")

    def __init__(self, raw: bytes) -> None:
        self._raw = raw
        self._data: dict[str, Any] | None = None

    def _parsed(self) -> dict[str, Any]:
        if self._data is None:
            self._data = orjson.loads(self._raw)
        return self._data

    def __getitem__(self, key: str) -> Any:
        return self._parsed()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._parsed())

    def __len__(self) -> int:
        return len(self._parsed())


def _fast_order_event(body: bytes) -> WebhookEvent | None:
    try:
        body.decode("utf-8")  # orjson rejects invalid UTF-8 anywhere; msgspec skips unread text
        decoded = _ORDER_DECODER.decode(body)
    except (UnicodeDecodeError, msgspec.DecodeError):
        return None
    present = [key for key in PAYLOAD_KEYS if getattr(decoded, key) is not msgspec.UNSET]
    if len(present) != 1 or present[0] not in ORDER_LINE_PAYLOAD_KEYS:
        return None
    payload_key = present[0]
    payload: _OrderPayload = getattr(decoded, payload_key)
    event_name = decoded.eventName
    if not isinstance(event_name, str) or not event_name:
        return None
    message_id = None
    for meta in (decoded.meta, payload.meta):
        if meta is not None and meta.messageId is not None:
            if not isinstance(meta.messageId, str):
                return None
            message_id = meta.messageId or None
            break
    order_id = _fast_string(payload.orderId if payload.orderId is not None else payload.id)
    number = None
    if payload.buyerOrder is not None:
        number = _fast_string(payload.buyerOrder.purchaseOrderNumber)
    if order_id is False or number is False:
        return None
    keys = tuple(_fast_line_key(line) for line in payload.lines)
    return WebhookEvent(
        PAYLOAD_KEYS[payload_key],
        event_name,
        message_id,
        order_id,
        number,
        payload_key,
        _LazyBody(body),
        keys,
        (),
        payload.lastUpdatedAt if isinstance(payload.lastUpdatedAt, str) else None,
    )


def _fast_string(value: Any) -> str | Literal[False] | None:
    """What ``_optional_string`` returns, or False where it would raise."""
    if value is None:
        return None
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value)
    return False


def _fast_line_key(line: _OrderLine) -> str:
    # changes.order_line_key on the decoded fields
    position = line.buyerLine.position if line.buyerLine is not None else None
    if position not in (None, ""):
        return str(position)
    return str(line.id or "?")
