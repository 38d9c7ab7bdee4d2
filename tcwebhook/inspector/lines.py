"""The changed lines and documents of one event as table rows, each cell compared with the
last known state of the same order or shipment. Pure: no I/O, no HTML.

Which lines changed comes from the event itself (``changed_lines``, computed at receipt by
``tcwebhook.changes``); what changed in each is found here by comparing the cells with the
line's last known state: the line as the newest earlier event (or fetched object) that carried
it had it. An event need not carry every line (Tradecloud sends the lines a change touched), so
a line absent from the previous event is not "new" when an event before that carried it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from tcwebhook.changes import find_documents, order_line_key, shipment_lines
from tcwebhook.protocol import PAYLOAD_KEYS, EventKind
from tcwebhook.store import StoredEvent

ORDER_COLUMNS = ("item", "quantities", "dates", "price", "status")
SHIPMENT_COLUMNS = ("carrier", "order line", "item", "quantity")
DOCUMENT_COLUMNS = ("name", "type", "code", "revision", "updated")


@dataclass(frozen=True)
class Row:
    """One line or document: its key, cell texts, and which cells differ from before."""

    key: str
    cells: dict[str, str]
    marked: bool  # in the event's changed lines (documents: always shown, never marked)
    new: bool = False  # carried by no earlier version
    before: dict[str, str] = field(default_factory=dict)  # old text of each differing cell
    object_id: str | None = None  # documents: the id to download it by from the API


# Rows one table shows: an order of thousands of lines is a page a browser can still open.
MAX_ROWS = 200


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: list[Row]
    omitted: int = 0  # rows beyond MAX_ROWS, left out (unchanged ones first)


@dataclass(frozen=True)
class Changes:
    """The line and document tables of one event, and what they were compared with."""

    resource: Literal["order", "shipment"]
    lines: Table
    documents: Table
    compared_with: str | None  # "event #12", "the object fetched for event #12", or None


def subject(event: StoredEvent) -> Mapping[str, Any] | None:
    """The order or shipment an event carries: its webhook payload, else the fetched object."""
    try:
        if event.body:
            data = orjson.loads(event.body)
            for key in PAYLOAD_KEYS:
                if isinstance(data, Mapping) and isinstance(data.get(key), Mapping):
                    payload: Mapping[str, Any] = data[key]
                    return payload
            return None
        if event.fetched:
            fetched = orjson.loads(event.fetched)
            return fetched if isinstance(fetched, Mapping) else None
    except orjson.JSONDecodeError:
        return None
    return None


@dataclass(frozen=True)
class _Version:
    """One event's lines and documents as cells: each event is parsed and walked once."""

    lines: dict[str, dict[str, str]]
    documents: dict[str, dict[str, str]]
    stored_documents: frozenset[str]


def _version(event: StoredEvent) -> _Version | None:
    obj = subject(event)
    if obj is None:
        return None
    documents = find_documents(obj)
    if event.kind == EventKind.ORDER_DOCUMENTS:
        # Its lines carry documents only, no item, quantity or date: shown as lines, each
        # would "differ" from the order's line in every cell.
        lines = {}
    else:
        lines = (_shipment_lines if "shipment" in event.kind else _order_lines)(obj)
    return _Version(lines, _documents(documents), _stored_documents(documents))


def event_changes(event: StoredEvent, earlier: Iterable[StoredEvent]) -> Changes | None:
    """The tables for ``event``, compared with ``earlier``: the events of the same resource
    before it, newest first. Read lazily, and only until every line of ``event`` is found (in
    most orders, the previous event carries them all), so a long history costs nothing."""
    current = _version(event)
    if current is None:
        return None
    previous: StoredEvent | None = None
    before: _Version | None = None
    known: dict[str, dict[str, str]] = {}
    for older in earlier:
        version = _version(older)
        if previous is None:
            previous, before = older, version
        if version is not None:
            for key, cells in version.lines.items():
                known.setdefault(key, cells)  # newest first: the first seen is the last state
        if current.lines.keys() <= known.keys():
            break
    return _changes(event, current, previous, before, known)


def timeline_changes(events: list[StoredEvent]) -> list[Changes | None]:
    """The tables of each event (oldest first), each line compared with its last known state."""
    result: list[Changes | None] = []
    known: dict[str, dict[str, str]] = {}
    previous: StoredEvent | None = None
    before: _Version | None = None
    for event in events:
        version = _version(event)
        if version is None:
            result.append(None)
        else:
            result.append(_changes(event, version, previous, before, dict(known)))
            known.update(version.lines)
        previous, before = event, version
    return result


def _changes(
    event: StoredEvent,
    current: _Version,
    previous: StoredEvent | None,
    before: _Version | None,
    known: dict[str, dict[str, str]],
) -> Changes:
    resource: Literal["order", "shipment"] = "shipment" if "shipment" in event.kind else "order"
    marked = set(event.changed_lines if event.body else event.fetched_changed_lines or ())
    columns = ORDER_COLUMNS if resource == "order" else SHIPMENT_COLUMNS
    # Each line against its last known state; with no earlier lines at all (the first event,
    # or only document events before it) there is nothing to compare.
    lines = _compare(current.lines, known or None, marked, columns)
    documents = _compare(
        current.documents,
        before.documents if before else None,
        set(),
        DOCUMENT_COLUMNS,
        current.stored_documents,
    )
    compared_with = None
    if previous is not None and before is not None:
        what = "event" if previous.body else "the object fetched for event"
        compared_with = f"{what} #{previous.id}"
    return Changes(resource, lines, documents, compared_with)


def _compare(
    current: dict[str, dict[str, str]],
    previous: dict[str, dict[str, str]] | None,
    marked: set[str],
    columns: tuple[str, ...],
    downloadable: frozenset[str] = frozenset(),
) -> Table:
    rows = []
    for key, cells in current.items():
        old = previous.get(key) if previous is not None else None
        before = {}
        if old is not None:
            before = {name: old[name] for name in columns if old.get(name) != cells.get(name)}
        new = previous is not None and old is None
        object_id = key if key in downloadable else None
        rows.append(Row(key, cells, key in marked, new, before, object_id))
    return _bounded(columns, rows)


def _bounded(columns: tuple[str, ...], rows: list[Row]) -> Table:
    """At most ``MAX_ROWS`` rows, in their order; the changed ones are the last left out."""
    if len(rows) <= MAX_ROWS:
        return Table(columns, rows)
    ranked = sorted(
        range(len(rows)), key=lambda index: not (rows[index].marked or rows[index].before)
    )
    kept = sorted(ranked[:MAX_ROWS])
    return Table(columns, [rows[index] for index in kept], len(rows) - MAX_ROWS)


# ------------------------------------------------------------------------------------------
# Cells


def _order_lines(order: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    rows = {}
    for line in _maps(order.get("lines")):
        buyer_line = _map(line.get("buyerLine"))
        item = _map(buyer_line.get("item"))
        schedule = _schedule(line, buyer_line)
        unit = _text(item.get("purchaseUnitOfMeasureIso"), "")
        status = _map(line.get("status"))
        rows[order_line_key(line)] = {
            "item": _join(_text(item.get("number"), ""), _text(item.get("name"), "")),
            "quantities": _join(*(f"{_text(d.get('quantity'))} {unit}".strip() for d in schedule)),
            "dates": _join(*(_text(d.get("date")) for d in schedule)),
            "price": price_text(_prices(line, buyer_line)),
            "status": _join(
                _text(status.get("processStatus"), ""), _text(status.get("logisticsStatus"), "")
            ),
        }
    return rows


def _schedule(line: Mapping[str, Any], buyer_line: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The current deliveries of an order line, in either mode, as one list.

    Delivery-schedule mode: the line's ``deliverySchedule`` (else the buyer's). Single-delivery
    mode: one ``scheduledDelivery``, read from ``statusLine`` first, then from the line itself
    (older documents), then the buyer's request; so the same delivery reads the same in both
    modes and compares equal.
    """
    schedule = _maps(line.get("deliverySchedule") or buyer_line.get("deliverySchedule"))
    if schedule:
        return schedule
    for place in (_map(line.get("statusLine")), line, buyer_line):
        delivery = place.get("scheduledDelivery")
        if isinstance(delivery, Mapping):
            return [delivery]
    return []


def _prices(line: Mapping[str, Any], buyer_line: Mapping[str, Any]) -> Any:
    """The current price of an order line in either mode (single delivery: ``statusLine``)."""
    return (
        line.get("prices") or _map(line.get("statusLine")).get("prices") or buyer_line.get("prices")
    )


def _shipment_lines(shipment: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    rows = {}
    for found in shipment_lines(shipment):
        line = found.line
        item = _map(line.get("item"))
        supplier_line = _map(line.get("supplierLine"))
        unit = _text(item.get("purchaseUnitOfMeasureIso"), "")
        rows[found.key] = {
            "carrier": found.carrier or "loose",
            "order line": "/".join(
                _text(line.get(name), "")
                for name in ("purchaseOrderNumber", "purchaseOrderLinePosition")
            ),
            "item": _join(
                _text(item.get("buyerItemNumber"), ""), _text(item.get("buyerItemName"), "")
            ),
            "quantity": f"{_text(supplier_line.get('despatchQuantity'))} {unit}".strip(),
        }
    return rows


def _documents(documents: list[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    rows = {}
    for index, document in enumerate(documents):
        key = _text(document.get("objectId") or document.get("code"), f"#{index + 1}")
        meta = _map(document.get("meta"))
        rows[key] = {
            "name": _text(document.get("name")),
            "type": _text(document.get("type")),
            "code": _text(document.get("code")),
            "revision": _text(document.get("revision")),
            "updated": _text(
                document.get("lastUpdatedAt") or meta.get("lastUpdatedAt") or meta.get("createdAt")
            ),
        }
    return rows


def _stored_documents(documents: list[Mapping[str, Any]]) -> frozenset[str]:
    """The ``objectId`` of each document stored in Tradecloud (downloadable through the API)."""
    return frozenset(
        document["objectId"]
        for document in documents
        if isinstance(document.get("objectId"), str) and document["objectId"]
    )


def price_text(prices: Any, empty: str = "-") -> str:
    """``1187.5 EUR per 100 PCE`` from a Tradecloud prices object (net, else gross)."""
    prices = _map(prices)
    net = _map(prices.get("netPrice") or prices.get("grossPrice"))
    amount = _map(net.get("priceInTransactionCurrency"))
    if amount.get("value") is None:
        return empty
    text = f"{_text(amount.get('value'))} {_text(amount.get('currencyIso'), '')}".strip()
    per = prices.get("priceUnitQuantity")
    if per not in (None, 1):
        text += f" per {_text(per)} {_text(prices.get('priceUnitOfMeasureIso'), '')}".rstrip()
    return text


def _join(*parts: str) -> str:
    return " · ".join(part for part in parts if part) or "-"


def _text(value: Any, empty: str = "-") -> str:
    return str(value) if value not in (None, "") else empty


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _maps(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []
