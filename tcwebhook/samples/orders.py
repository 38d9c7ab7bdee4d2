"""Order, single-delivery and order-documents webhook samples, derived from the order template.

Each order event is the template's header plus only the lines the event affects
(docs/tradecloud.md#webhook-bodies), with statuses, requests and confirmed values that fit the
event: a rejection has rejected lines, a proposal carries ``supplierLine.requests.proposal``, a
reopen request sits on the side that asked for it, a cancellation sets the logistics status to
``Cancelled``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tcwebhook.samples import common

Line = dict[str, Any]
Order = dict[str, Any]
LineEdit = Callable[[Line], None]
OrderEdit = Callable[[Order], None]


@dataclass(frozen=True)
class OrderChange:
    """What one event did: which lines, to which statuses, and the edits that show it."""

    lines: tuple[str, ...] = ("10",)
    process: str = "Confirmed"
    in_progress: str | None = None
    logistics: str = "Open"
    order_process: str | None = None  # the whole order's status; derived when None
    edit: LineEdit | None = None
    header_edit: OrderEdit | None = None
    confirmed: bool = True  # whether the lines carry agreed (confirmed) values


# ------------------------------------------------------------------------------------------
# Line edits


def _schedule(line: Line) -> list[dict[str, Any]]:
    return common.clone(line["buyerLine"]["deliverySchedule"])


def _later(schedule: list[dict[str, Any]], days: int) -> list[dict[str, Any]]:
    return [dict(entry, date=common.shift_date(entry["date"], days)) for entry in schedule]


def _with_net_price(prices: dict[str, Any], value: float) -> dict[str, Any]:
    result = common.clone(prices)
    for currency in ("priceInTransactionCurrency", "priceInBaseCurrency"):
        result["netPrice"][currency]["value"] = value
    return result


def _set_current(line: Line, schedule: list[dict[str, Any]], prices: dict[str, Any]) -> None:
    """The agreed values become the line's current schedule and prices."""
    line["confirmedLine"] = {"deliverySchedule": common.clone(schedule), "prices": prices}
    current = [dict(entry, status="Open") for entry in schedule]
    line["deliverySchedule"] = current
    line["deliveryScheduleIncludingRequests"] = common.clone(current)
    line["prices"] = prices
    line["pricesIncludingRequests"] = common.clone(prices)


def _request(
    side: str,
    name: str,
    status: str,
    reason: str,
    days: int = 0,
    net_price: float | None = None,
    quantity_factor: float = 1.0,
) -> LineEdit:
    """A proposal or reopen request on ``side`` (buyerLine/supplierLine) in ``status``.

    An open request shows in the ``…IncludingRequests`` fields; an approved one becomes the
    confirmed values; a rejected, reverted or closed one leaves the current values alone.
    """

    def edit(line: Line) -> None:
        schedule = _later(_schedule(line), days)
        for entry in schedule:
            entry["quantity"] = round(entry["quantity"] * quantity_factor)
        prices = line["prices"]
        if net_price is not None:
            prices = _with_net_price(prices, net_price)
        request = {"deliverySchedule": schedule, "prices": prices, "reason": reason}
        line[side].setdefault("requests", {})[name] = dict(request, status=status)
        if status == "Open":
            line["deliveryScheduleIncludingRequests"] = [
                dict(entry, status="Open") for entry in schedule
            ]
            line["pricesIncludingRequests"] = common.clone(prices)
        elif status == "Approved":
            _set_current(line, schedule, common.clone(prices))

    return edit


def _confirm_differently(line: Line) -> None:
    schedule = _later(_schedule(line), 7)
    schedule[-1]["quantity"] += 10
    _set_current(line, schedule, line["prices"])
    line["supplierLine"]["notes"] = ["Last call-off rounded up to full crates of 10"]


def _reject(line: Line) -> None:
    line.pop("confirmedLine", None)
    line["supplierLine"]["notes"] = [
        "OP-BH-511 is discontinued; successor OP-BH-511N can ship from week 46"
    ]


def _reissue(line: Line) -> None:
    line["buyerLine"]["deliverySchedule"][0]["quantity"] = 1500
    line["buyerLine"]["notes"] = ["Quantity raised from 1200 to 1500 for the second hull"]
    current = [dict(entry, status="Open") for entry in line["buyerLine"]["deliverySchedule"]]
    line["deliverySchedule"] = current
    line["deliveryScheduleIncludingRequests"] = common.clone(current)


def _buyer_update(line: Line) -> None:
    line["buyerLine"]["description"] = "Coupling flange, machined and phosphated"
    line["buyerLine"]["properties"].append({"key": "Surface", "value": "Zinc phosphate"})


def _supplier_update(line: Line) -> None:
    line["supplierLine"]["description"] = "Kupplungsflansch DN80, vergütet"
    line["supplierLine"]["notes"] = ["Heat treatment batch H-2025-0931"]


def _item_details(line: Line) -> None:
    line["mergedItemDetails"] = dict(
        line["mergedItemDetails"],
        countryOfOriginCodeIso2="PL",
        netWeight=2.41,
        batchNumber="H-2025-0931",
    )


def _delivery_status(status: str, delivered: bool = False, first_only: bool = False) -> LineEdit:
    def edit(line: Line) -> None:
        entries = line["deliverySchedule"][:1] if first_only else line["deliverySchedule"]
        for entry in entries:
            entry["status"] = status
        line["deliveryScheduleIncludingRequests"] = common.clone(line["deliverySchedule"])
        line["buyerLine"]["indicators"]["delivered"] = delivered

    return edit


def _delivery_history(replace: bool) -> LineEdit:
    def edit(line: Line) -> None:
        _delivery_status("Delivered", first_only=True)(line)
        received = [{"position": "1", "date": "2025-10-07", "quantity": 120}]
        if not replace:
            received.append({"position": "2", "date": "2025-10-09", "quantity": 80})
        else:
            received = [{"position": "1", "date": "2025-10-08", "quantity": 200}]
        line["buyerLine"]["deliveryHistory"] = received

    return edit


def _logistics_update(status: str, transport: str) -> LineEdit:
    def edit(line: Line) -> None:
        first = line["deliverySchedule"][0]
        first.update(
            status=status,
            etd=common.shift_date(first["date"], -2),
            eta=first["date"],
            transportMode=transport,
        )
        line["deliveryScheduleIncludingRequests"] = common.clone(line["deliverySchedule"])

    return edit


def _reschedule(status: str) -> LineEdit:
    request = _request(
        "supplierLine",
        "shipmentRescheduleRequest",
        status,
        "Shipment LS-2025-11208 holds 190 pieces; 10 follow with the second call-off",
        quantity_factor=0.95,
    )

    def edit(line: Line) -> None:
        request(line)
        if status == "Approved":
            line["deliverySchedule"][0]["status"] = "ReadyToShip"

    return edit


def _buyer_contact(order: Order) -> None:
    order["buyerOrder"]["contact"] = {"email": "r.verhoeven@kestrel-marine.example"}


def _supplier_contact(order: Order) -> None:
    order["supplierOrder"]["contact"] = {"email": "k.schulte@ostwald-praezision.example"}
    order["buyerOrder"]["supplierContact"] = {"email": "k.schulte@ostwald-praezision.example"}


def _extra_line(order: Order) -> None:
    line = common.clone(order["lines"][1])
    line["id"] = line["id"][: -len("20")] + "40"
    buyer_line = line["buyerLine"]
    buyer_line.update(position="40", row=4, description="Spare brackets", notes=[])
    buyer_line["item"].update(number="KM-71211", name="Mounting bracket M16, galvanised")
    buyer_line["item"]["supplierItemNumber"] = "OP-BR-1211"
    buyer_line["deliverySchedule"] = [{"position": "1", "date": "2025-11-17", "quantity": 300}]
    buyer_line["terms"]["contractPosition"] = "40"
    line["supplierLine"].update(salesOrderPosition="40")
    current = [dict(entry, status="Open") for entry in buyer_line["deliverySchedule"]]
    line["deliverySchedule"] = current
    line["deliveryScheduleIncludingRequests"] = common.clone(current)
    order["lines"].append(line)


_PROPOSAL = "Forging capacity is booked; one week later and 4% raw-material surcharge"
_BUYER_REOPEN = "Hull KV-2207 delayed; please deliver two weeks later"
_SUPPLIER_REOPEN = "Steel surcharge from October; asking to revise the price"

CHANGES: dict[str, OrderChange] = {
    "OrderIssuedByBuyer": OrderChange(
        ("10", "20", "30"), "Issued", order_process="Issued", confirmed=False
    ),
    "OrderLinesIssuedByBuyer": OrderChange(
        ("40",), "Issued", order_process="InProgress", confirmed=False, header_edit=_extra_line
    ),
    "OrderLinesReissuedByBuyer": OrderChange(
        ("20",), "Issued", order_process="Issued", confirmed=False, edit=_reissue
    ),
    "OrderLinesUpdatedByBuyer": OrderChange(edit=_buyer_update),
    "OrderLinesAcceptedBySupplier": OrderChange(("10", "20"), order_process="InProgress"),
    "OrderLinesRejectedBySupplier": OrderChange(
        ("30",), "Rejected", order_process="InProgress", confirmed=False, edit=_reject
    ),
    "OrderLinesConfirmedByBuyer": OrderChange(("20",)),
    "OrderLinesConfirmedBySupplier": OrderChange(edit=_confirm_differently),
    "OrderChangesProposedBySupplier": OrderChange(
        process="InProgress",
        in_progress="OpenSupplierProposal",
        confirmed=False,
        edit=_request("supplierLine", "proposal", "Open", _PROPOSAL, 7, 15.39),
    ),
    "OrderChangesProposalApprovedByBuyer": OrderChange(
        edit=_request("supplierLine", "proposal", "Approved", _PROPOSAL, 7, 15.39)
    ),
    "OrderChangesProposalRejectedByBuyer": OrderChange(
        process="InProgress",
        in_progress="RejectedSupplierProposal",
        confirmed=False,
        edit=_request("supplierLine", "proposal", "Rejected", _PROPOSAL, 7, 15.39),
    ),
    "OrderLinesUpdatedBySupplier": OrderChange(edit=_supplier_update),
    "OrderLinesItemDetailsChanged": OrderChange(edit=_item_details),
    "OrderLinesReopenRequestedByBuyer": OrderChange(
        process="InProgress",
        in_progress="OpenBuyerReopenRequest",
        edit=_request("buyerLine", "reopenRequest", "Open", _BUYER_REOPEN, 14),
    ),
    "OrderLinesReopenRequestRevertedByBuyer": OrderChange(
        edit=_request("buyerLine", "reopenRequest", "Closed", _BUYER_REOPEN, 14)
    ),
    "OrderLinesReopenRequestApprovedBySupplier": OrderChange(
        edit=_request("buyerLine", "reopenRequest", "Approved", _BUYER_REOPEN, 14)
    ),
    "OrderLinesReopenRequestRejectedBySupplier": OrderChange(
        edit=_request("buyerLine", "reopenRequest", "Rejected", _BUYER_REOPEN, 14)
    ),
    "OrderLinesReopenRequestedBySupplier": OrderChange(
        process="InProgress",
        in_progress="OpenSupplierReopenRequest",
        edit=_request("supplierLine", "reopenRequest", "Open", _SUPPLIER_REOPEN, 0, 15.24),
    ),
    "OrderLinesReopenRequestRevertedBySupplier": OrderChange(
        edit=_request("supplierLine", "reopenRequest", "Closed", _SUPPLIER_REOPEN, 0, 15.24)
    ),
    "OrderLinesReopenRequestApprovedByBuyer": OrderChange(
        edit=_request("supplierLine", "reopenRequest", "Approved", _SUPPLIER_REOPEN, 0, 15.24)
    ),
    "OrderLinesReopenRequestRejectedByBuyer": OrderChange(
        edit=_request("supplierLine", "reopenRequest", "Rejected", _SUPPLIER_REOPEN, 0, 15.24)
    ),
    "OrderLinesReconfirmationRequestedByBuyer": OrderChange(
        process="InProgress", in_progress="OpenBuyerReconfirmationRequest"
    ),
    "OrderLinesReconfirmedBySupplier": OrderChange(),
    "OrderLinesCancelledByBuyer": OrderChange(
        ("30",), "Cancelled", logistics="Cancelled", order_process="InProgress", confirmed=False
    ),
    "CancelledOrderLinesRevertedByBuyer": OrderChange(
        ("30",),
        "InProgress",
        in_progress="RevertedCancelledLine",
        order_process="InProgress",
        confirmed=False,
    ),
    "OrderLinesCompletedByBuyer": OrderChange(
        ("10", "20"), "Completed", logistics="Delivered", edit=_delivery_status("Delivered", True)
    ),
    "CompletedOrderLinesRevertedByBuyer": OrderChange(
        process="InProgress",
        in_progress="RevertedCompletedLine",
        logistics="Delivered",
        edit=_delivery_status("Delivered", True),
    ),
    "OrderLinesMarkedAsOpenByBuyer": OrderChange(("20",)),
    "OrderLinesMarkedAsOpenBySupplier": OrderChange(("20",)),
    "OrderLinesShippedByBuyer": OrderChange(
        ("20",), logistics="Shipped", edit=_delivery_status("Shipped")
    ),
    "OrderLinesMarkedAsDeliveredByBuyer": OrderChange(
        ("20",), logistics="Delivered", edit=_delivery_status("Delivered", True)
    ),
    "OrderLinesMarkedAsDeliveredBySupplier": OrderChange(
        ("20",), logistics="Delivered", edit=_delivery_status("Delivered", True)
    ),
    "OrderLinesDeliveryHistoryAppendedByBuyer": OrderChange(edit=_delivery_history(False)),
    "OrderLinesDeliveryHistorySetByBuyer": OrderChange(edit=_delivery_history(True)),
    "OrderLinesDeliveryScheduleLogisticsUpdatedByBuyer": OrderChange(
        logistics="Produced", edit=_logistics_update("Produced", "Road")
    ),
    "OrderLinesDeliveryScheduleLogisticsUpdatedBySupplier": OrderChange(
        logistics="ReadyToShip", edit=_logistics_update("ReadyToShip", "Road")
    ),
    "OrderLinesShipmentRescheduleRequestedBySupplier": OrderChange(
        process="InProgress",
        in_progress="OpenSupplierShipmentRescheduleRequest",
        edit=_reschedule("Open"),
    ),
    "OrderLinesShipmentRescheduleApprovedByBuyer": OrderChange(
        logistics="ReadyToShip", edit=_reschedule("Approved")
    ),
    "OrderLinesShipmentRescheduleRejectedByBuyer": OrderChange(
        process="InProgress", in_progress="RejectedDeliverySchedule", edit=_reschedule("Rejected")
    ),
    "OrderContactReassignedByBuyer": OrderChange((), header_edit=_buyer_contact),
    "OrderContactReassignedBySupplier": OrderChange((), header_edit=_supplier_contact),
    "OrderResentByBuyer": OrderChange(("10", "20", "30")),
    "OrderResentBySupplier": OrderChange(("10", "20", "30")),
}


# ------------------------------------------------------------------------------------------
# Building events


def order_event(event_name: str, index: int) -> dict[str, Any]:
    """The ``orderEvent`` payload of ``event_name`` (delivery-schedule mode)."""
    change = CHANGES[event_name]
    order = common.template("order")
    if change.header_edit is not None:
        change.header_edit(order)
    at = common.event_time(index)
    lines = []
    for line in order["lines"]:
        if line["buyerLine"]["position"] not in change.lines:
            continue
        if change.confirmed:
            _set_current(line, _schedule(line), line["prices"])
        status = {"processStatus": change.process, "logisticsStatus": change.logistics}
        if change.in_progress:
            status["inProgressStatus"] = change.in_progress
        line["status"] = status
        if change.edit is not None:
            change.edit(line)
        line["eventDates"] = dict(line["eventDates"], lastEvent=at)
        line["lastUpdatedAt"] = at
        lines.append(line)
    payload = {"orderId": order.pop("id"), **order, "lines": lines}
    payload["status"] = {
        "processStatus": change.order_process or _order_process(change),
        "logisticsStatus": "Open" if change.logistics == "Cancelled" else change.logistics,
    }
    payload["version"] = 1 if event_name == "OrderIssuedByBuyer" else 2 + index // 6
    payload["lastUpdatedAt"] = at
    return payload


def _order_process(change: OrderChange) -> str:
    return "Confirmed" if change.process in ("Confirmed", "Completed") else "InProgress"


def single_delivery(payload: dict[str, Any]) -> dict[str, Any]:
    """The same event in single-delivery mode: one line per delivery, values in ``statusLine``."""
    result = common.clone(payload)
    result["lines"] = [part for line in payload["lines"] for part in _split(line)]
    return result


def _split(line: Line) -> list[Line]:
    parts = []
    for number, current in enumerate(line["deliverySchedule"]):
        part = common.clone(line)
        buyer_line = part["buyerLine"]
        position = buyer_line["position"]
        if number:
            # Tradecloud's split lines have no position of their own; they point to the original.
            part["id"] = f"{line['id']}-{number + 1}"
            buyer_line["position"] = ""
            buyer_line["originalPosition"] = position
        buyer_line["scheduledDelivery"] = _pick(buyer_line.pop("deliverySchedule"), number)
        for side in ("buyerLine", "supplierLine"):
            for request in part[side].get("requests", {}).values():
                request["deliverySchedule"] = [_pick(request["deliverySchedule"], number)]
        if "confirmedLine" in part:
            confirmed = part["confirmedLine"]
            confirmed["scheduledDelivery"] = _pick(confirmed.pop("deliverySchedule"), number)
        including = part.pop("deliveryScheduleIncludingRequests")
        part.pop("deliverySchedule")
        part["statusLine"] = {
            "scheduledDelivery": _delivery(current),
            "scheduledDeliveryInclRequests": _delivery(_pick(including, number)),
            "prices": part.pop("prices"),
            "pricesInclRequests": part.pop("pricesIncludingRequests"),
        }
        parts.append(part)
    return parts


def _pick(schedule: list[dict[str, Any]], number: int) -> dict[str, Any]:
    return dict(schedule[min(number, len(schedule) - 1)])


def _delivery(entry: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in entry.items() if key != "position"}


def order_documents_event(event_name: str, index: int) -> dict[str, Any]:
    """The ``orderDocumentsEvent`` payload: the attached documents and the lines they hang off."""
    order = common.template("order")
    by_buyer = event_name.endswith("ByBuyer")
    side, order_side = (
        ("buyerLine", "buyerOrder") if by_buyer else ("supplierLine", "supplierOrder")
    )
    header_document, line_document = _documents(by_buyer)
    buyer_order = order["buyerOrder"]
    supplier_order = order["supplierOrder"]
    payload: dict[str, Any] = {
        "orderId": order["id"],
        "buyerOrder": {
            "companyId": buyer_order["companyId"],
            "supplierAccountNumber": buyer_order["supplierAccountNumber"],
            "purchaseOrderNumber": buyer_order["purchaseOrderNumber"],
            "documents": [],
        },
        "supplierOrder": {
            "companyId": supplier_order["companyId"],
            "buyerAccountNumber": supplier_order["buyerAccountNumber"],
            "documents": [],
        },
        "lines": [
            {
                "id": order["lines"][0]["id"],
                "buyerLine": {"position": "10", "documents": []},
                "supplierLine": {
                    "salesOrderNumber": "AB-2025-30417",
                    "salesOrderPosition": "10",
                    "documents": [],
                },
            }
        ],
        "lastUpdatedAt": common.event_time(index),
    }
    payload[order_side]["documents"].append(header_document)
    payload["lines"][0][side]["documents"].append(line_document)
    return payload


def _documents(by_buyer: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    if by_buyer:
        return (
            {
                "code": "QA-SPEC-0112",
                "revision": "4",
                "name": "Kestrel supplier quality requirements rev 4.pdf",
                "description": "Quality requirements for machined parts",
                "type": "General",
                "objectId": "0b7e2c94-61f3-4d8a-b5c0-8e19a4d7f362",
            },
            {
                "code": "KM-71044-C",
                "revision": "C",
                "name": "KM-71044-C coupling flange DN80.pdf",
                "description": "Drawing",
                "type": "Drawing",
                "url": "https://plm.kestrel-marine.example/drawings/KM-71044/C",
            },
        )
    return (
        {
            "code": "AB-2025-30417",
            "revision": "1",
            "name": "Auftragsbestaetigung AB-2025-30417.pdf",
            "description": "Signed order confirmation",
            "type": "General",
            "objectId": "9d3a6f18-c2e5-4b07-8f41-3a6c0e9b7d25",
        },
        {
            "code": "CERT-H-2025-0931",
            "revision": "1",
            "name": "EN10204-3.1 OP-FL-080 heat H-2025-0931.pdf",
            "description": "Material certificate 3.1",
            "type": "Certificate",
            "objectId": "47c1e8b5-0a9d-4f26-93e7-b5d2f6a1c083",
        },
    )


def full_order() -> dict[str, Any]:
    """The order as ``GET /v2/order/{id}`` returns it: every line, mid-way through its life.

    Lines 10 and 20 are confirmed; line 30 carries a newer, open supplier proposal, so only
    line 30's ``lastUpdatedAt`` equals the order's.
    """
    order = common.template("order")
    confirmed_at = common.event_time(4)
    proposed_at = common.event_time(8)
    for line in order["lines"][:2]:
        _set_current(line, _schedule(line), line["prices"])
        line["status"] = {"processStatus": "Confirmed", "logisticsStatus": "Open"}
        line["lastUpdatedAt"] = confirmed_at
    third = order["lines"][2]
    _request("supplierLine", "proposal", "Open", "Castings arrive one week late", 7)(third)
    third["status"] = {
        "processStatus": "InProgress",
        "inProgressStatus": "OpenSupplierProposal",
        "logisticsStatus": "Open",
    }
    third["lastUpdatedAt"] = proposed_at
    order["status"] = {"processStatus": "InProgress", "logisticsStatus": "Open"}
    order["version"] = 3
    order["eventDates"] = dict(order["eventDates"], firstConfirmed=confirmed_at)
    order["lastUpdatedAt"] = proposed_at
    return order
