"""Shipment webhook samples, derived from the shipment template.

A shipment webhook always carries the whole shipment; what changed is marked by line and
document ``meta.lastUpdatedAt`` equal to ``shipment.meta.lastUpdatedAt``
(docs/tradecloud.md#changed-lines).
So each event here sets the shipment's timestamp and touches exactly the parts it changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from tcwebhook.samples import common

Shipment = dict[str, Any]

# Shipment events come after the order is confirmed: start the clock there.
_FIRST_INDEX = 40


def _lines(shipment: Shipment) -> Iterator[dict[str, Any]]:
    for carrier in shipment["loadCarriers"]:
        yield from carrier["lines"]
    yield from shipment["lines"]


def _stamp_all(shipment: Shipment, at: str) -> None:
    for line in _lines(shipment):
        line["meta"]["lastUpdatedAt"] = at
    for document in shipment["supplierShipment"]["documents"]:
        document["meta"]["lastUpdatedAt"] = at


def _issued(shipment: Shipment, at: str) -> None:
    _stamp_all(shipment, at)


def _reissued(shipment: Shipment, at: str) -> None:
    # Issued earlier; now the supplier corrects one loose line and leaves the rest as they were.
    _stamp_all(shipment, common.after(at, -3 * 3600 * 1000))
    bracket = shipment["lines"][0]
    bracket["supplierLine"].update(despatchQuantity=1100, backorderQuantity=100)
    bracket["meta"]["lastUpdatedAt"] = at


def _status(process_status: str, reason: str | None = None) -> Callable[[Shipment, str], None]:
    def edit(shipment: Shipment, at: str) -> None:
        _stamp_all(shipment, common.after(at, -5 * 3600 * 1000))
        shipment["status"] = {"processStatus": process_status}
        if reason:
            shipment["status"]["processStatusReason"] = reason

    return edit


def _header_updated(shipment: Shipment, at: str) -> None:
    _status("Approved")(shipment, at)
    shipment["identifiers"]["billOfLadingNumber"] = "NTG-BL-2025-004417"


def _document(side: str, document: dict[str, Any]) -> Callable[[Shipment, str], None]:
    def edit(shipment: Shipment, at: str) -> None:
        _status("Approved")(shipment, at)
        shipment[side]["documents"].append(dict(document, meta={"lastUpdatedAt": at}))

    return edit


EDITS: dict[str, Callable[[Shipment, str], None]] = {
    "ShipmentIssuedBySupplier": _issued,
    "ShipmentReissuedBySupplier": _reissued,
    "ShipmentApprovedByBuyer": _status("Approved"),
    "ShipmentRejectedByBuyer": _status(
        "Rejected", "Line 30 was not ordered for this week; split it into a second shipment"
    ),
    "ShipmentHeaderUpdatedBySupplier": _header_updated,
    "ShipmentDocumentAttachedByBuyer": _document(
        "buyerShipment",
        {
            "code": "GR-2025-88214",
            "revision": "1",
            "name": "goods-receipt-LS-2025-11208.pdf",
            "description": "Goods receipt note",
            "type": "General",
            "objectId": "6e2b9f47-1c0a-4d83-a5f6-2d8c7b3e9014",
        },
    ),
    "ShipmentDocumentAttachedBySupplier": _document(
        "supplierShipment",
        {
            "code": "RE-2025-55830",
            "revision": "1",
            "name": "invoice-RE-2025-55830.pdf",
            "description": "Commercial invoice",
            "type": "Invoice",
            "objectId": "b0c4d7e2-95a3-4f18-8e6b-71f2a0d9c356",
        },
    ),
    "ShipmentResentByBuyer": _status("Approved"),
}


def shipment_event(event_name: str, index: int) -> Shipment:
    """The ``shipment`` payload of a shipment event: the whole shipment, changes stamped."""
    shipment = common.template("shipment")
    at = common.event_time(_FIRST_INDEX + index)
    EDITS[event_name](shipment, at)
    shipment["meta"]["lastUpdatedAt"] = at
    return shipment


def full_shipment() -> Shipment:
    """The shipment as ``GET /v2/shipment/{id}`` returns it after a reissue."""
    return shipment_event("ShipmentReissuedBySupplier", 1)
