"""Which lines and documents changed, by the rules of docs/tradecloud.md#changed-lines.

Pure functions.

Timestamps are compared as instants, never as strings: ``…11.200Z``, ``…11.2Z`` and
``…T16:03:11.2+01:00`` are the same moment. A value without an offset is UTC. A line or document
without any timestamp is *unknown*: listed apart, neither changed nor unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

Status = Literal["changed", "unchanged", "unknown"]

_FRACTION = re.compile(r"\.(\d+)")


def parse_instant(value: Any) -> datetime | None:
    """An aware UTC datetime for an ISO-8601 timestamp, or None when absent or unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("z", "Z")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Python accepts 1-6 fractional digits; Tradecloud sends any number, so cut to microseconds.
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        return None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC)


def updated_at(obj: Mapping[str, Any], *, in_meta: bool) -> datetime | None:
    """``lastUpdatedAt`` (in ``meta`` for shipment parts), else the legacy ``lastChangedAt``."""
    places: list[Any] = [obj.get("meta"), obj] if in_meta else [obj, obj.get("meta")]
    for place in places:
        if isinstance(place, Mapping):
            for name in ("lastUpdatedAt", "lastChangedAt"):
                instant = parse_instant(place.get(name))
                if instant is not None:
                    return instant
    return None


# ------------------------------------------------------------------------------------------
# Keys and places


def order_line_key(line: Mapping[str, Any]) -> str:
    """``buyerLine.position``, or the line id when the position is empty (a supplier split)."""
    buyer_line = line.get("buyerLine")
    position = buyer_line.get("position") if isinstance(buyer_line, Mapping) else None
    if position not in (None, ""):
        return str(position)
    return str(line.get("id") or "?")


def shipment_line_key(line: Mapping[str, Any]) -> str:
    """``despatchAdviceNumber/despatchAdviceLinePosition``, the line's natural key."""
    supplier_line = line.get("supplierLine")
    if isinstance(supplier_line, Mapping) and supplier_line.get("despatchAdviceNumber"):
        return (
            f"{supplier_line.get('despatchAdviceNumber')}/"
            f"{supplier_line.get('despatchAdviceLinePosition', '')}"
        )
    return f"{line.get('purchaseOrderNumber', '?')}/{line.get('purchaseOrderLinePosition', '?')}"


@dataclass(frozen=True)
class ShipmentLine:
    key: str
    line: Mapping[str, Any]
    carrier: str | None  # container number or package SSCC; None for a loose line

    @property
    def place(self) -> Literal["loose", "loadCarrier"]:
        return "loose" if self.carrier is None else "loadCarrier"


def carrier_name(carrier: Mapping[str, Any]) -> str:
    return str(carrier.get("containerNumber") or carrier.get("packageSSCC") or "load carrier")


def shipment_lines(shipment: Mapping[str, Any]) -> Iterator[ShipmentLine]:
    """Every line of a shipment: those inside load carriers first, then the loose ones."""
    for carrier in _dicts(shipment.get("loadCarriers")):
        for line in _dicts(carrier.get("lines")):
            yield ShipmentLine(shipment_line_key(line), line, carrier_name(carrier))
    for line in _dicts(shipment.get("lines")):
        yield ShipmentLine(shipment_line_key(line), line, None)


def shipment_documents(shipment: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for side in ("supplierShipment", "buyerShipment"):
        part = shipment.get(side)
        if isinstance(part, Mapping):
            for document in _dicts(part.get("documents")):
                yield side, document


def find_documents(obj: Any) -> list[Mapping[str, Any]]:
    """Every element of every array stored under a key named ``documents``, in payload order."""
    found: list[Mapping[str, Any]] = []
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            if key == "documents" and isinstance(value, list):
                found.extend(d for d in value if isinstance(d, Mapping))
            else:
                found.extend(find_documents(value))
    elif isinstance(obj, list):
        for item in obj:
            found.extend(find_documents(item))
    return found


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


# ------------------------------------------------------------------------------------------
# Classification


@dataclass(frozen=True)
class Classified:
    """Items sorted into changed / unchanged / unknown, in payload order."""

    changed: list[Any] = field(default_factory=list)
    unchanged: list[Any] = field(default_factory=list)
    unknown: list[Any] = field(default_factory=list)

    def add(self, status: Status, item: Any) -> None:
        getattr(self, status).append(item)


def classify(
    instant: datetime | None, reference: datetime | None, since: datetime | None
) -> Status:
    """``since`` given: changed when later than it; otherwise changed when equal to reference."""
    if instant is None:
        return "unknown"
    if since is not None:
        return "changed" if instant > since else "unchanged"
    return "changed" if reference is not None and instant == reference else "unchanged"


def shipment_reference(shipment: Mapping[str, Any]) -> datetime | None:
    return updated_at(shipment, in_meta=True)


def shipment_line_changes(shipment: Mapping[str, Any], since: datetime | None = None) -> Classified:
    """Shipment lines (loose and in load carriers) against ``shipment.meta.lastUpdatedAt``."""
    reference = shipment_reference(shipment)
    result = Classified()
    for item in shipment_lines(shipment):
        result.add(classify(updated_at(item.line, in_meta=True), reference, since), item)
    return result


def shipment_document_changes(
    shipment: Mapping[str, Any], since: datetime | None = None
) -> Classified:
    """Shipment documents of both sides, as ``(side, document)`` pairs."""
    reference = shipment_reference(shipment)
    result = Classified()
    for side, document in shipment_documents(shipment):
        status = classify(updated_at(document, in_meta=True), reference, since)
        result.add(status, (side, document))
    return result


def order_reference(order: Mapping[str, Any]) -> datetime | None:
    """The order's ``lastUpdatedAt``, else the newest line timestamp."""
    header = updated_at(order, in_meta=False)
    if header is not None:
        return header
    instants = [updated_at(line, in_meta=False) for line in _dicts(order.get("lines"))]
    known = [instant for instant in instants if instant is not None]
    return max(known) if known else None


def order_line_changes(
    order: Mapping[str, Any],
    since: datetime | None = None,
    previous: Mapping[str, Any] | None = None,
) -> Classified:
    """Lines of a fetched order object.

    With ``previous`` (an earlier fetched version of the same order) a line is changed when its
    timestamp differs from that line's timestamp then, or when it is new. Otherwise ``since`` or
    the header rule of docs/tradecloud.md#changed-lines decides.
    """
    lines = _dicts(order.get("lines"))
    result = Classified()
    if previous is not None:
        before = {
            order_line_key(line): updated_at(line, in_meta=False)
            for line in _dicts(previous.get("lines"))
        }
        for line in lines:
            instant = updated_at(line, in_meta=False)
            key = order_line_key(line)
            if instant is None:
                result.add("unknown", line)
            elif key not in before or before[key] != instant:
                result.add("changed", line)
            else:
                result.add("unchanged", line)
        return result
    reference = order_reference(order)
    for line in lines:
        result.add(classify(updated_at(line, in_meta=False), reference, since), line)
    return result


def order_event_lines(event_payload: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """In an order webhook every line of the payload is affected
    (docs/tradecloud.md#changed-lines)."""
    return _dicts(event_payload.get("lines"))


# ------------------------------------------------------------------------------------------
# Selection for display: the lines worth showing, in payload order, and the object cut to them


@dataclass(frozen=True)
class SelectedLine:
    """A line picked for display with its status; ``carrier`` only for shipment lines."""

    key: str
    line: Mapping[str, Any]
    status: Status
    carrier: str | None = None


def select_lines(
    kind: Literal["order", "shipment"],
    obj: Mapping[str, Any],
    since: datetime | None = None,
    all_lines: bool = False,
) -> list[SelectedLine]:
    """Changed and unknown lines (every line with ``all_lines``) of a fetched object.

    ``since`` given: changed means updated after it; otherwise the reference rule of
    docs/tradecloud.md#changed-lines.
    """
    if kind == "order":
        reference = order_reference(obj)
        candidates = [
            SelectedLine(order_line_key(line), line, "unchanged")
            for line in _dicts(obj.get("lines"))
        ]
        in_meta = False
    else:
        reference = shipment_reference(obj)
        candidates = [
            SelectedLine(item.key, item.line, "unchanged", item.carrier)
            for item in shipment_lines(obj)
        ]
        in_meta = True
    selected = []
    for candidate in candidates:
        status = classify(updated_at(candidate.line, in_meta=in_meta), reference, since)
        if all_lines or status != "unchanged":
            selected.append(SelectedLine(candidate.key, candidate.line, status, candidate.carrier))
    return selected


def filter_lines(
    kind: Literal["order", "shipment"], obj: Mapping[str, Any], keep: list[SelectedLine]
) -> dict[str, Any]:
    """A shallow copy of ``obj`` whose ``lines`` (and load-carrier lines) hold only ``keep``."""
    kept = {id(selected.line) for selected in keep}

    def only_kept(lines: Any) -> Any:
        if not isinstance(lines, list):
            return lines
        return [line for line in lines if id(line) in kept]

    result = dict(obj)
    if "lines" in result:
        result["lines"] = only_kept(result["lines"])
    if kind == "shipment" and isinstance(result.get("loadCarriers"), list):
        result["loadCarriers"] = [
            {**carrier, "lines": only_kept(carrier.get("lines"))}
            if isinstance(carrier, Mapping) and "lines" in carrier
            else carrier
            for carrier in result["loadCarriers"]
        ]
    return result
