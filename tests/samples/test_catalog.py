"""The built-in sample catalog: complete, uniquely named, parseable, and fitting each event."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tcwebhook import changes, samples
from tcwebhook.errors import UnknownSample
from tcwebhook.events import (
    ORDER_DOCUMENTS_EVENT_NAMES,
    ORDER_EVENT_NAMES,
    SHIPMENT_EVENT_NAMES,
    EventKind,
    parse_webhook,
)

CATALOG = samples.catalog()
WEBHOOKS = [sample for sample in CATALOG if sample.is_webhook]


def by_name(name: str) -> dict[str, Any]:
    return samples.get_sample(name).body


def test_every_event_name_has_a_sample_in_each_mode() -> None:
    pairs = {(sample.kind, sample.event_name) for sample in CATALOG}
    for name in ORDER_EVENT_NAMES:
        assert ("order", name) in pairs
        assert ("single_delivery_order", name) in pairs
    for name in ORDER_DOCUMENTS_EVENT_NAMES:
        assert ("order_documents", name) in pairs
    for name in SHIPMENT_EVENT_NAMES:
        assert ("shipment", name) in pairs
    assert ("order_object", None) in pairs and ("shipment_object", None) in pairs
    expected = 2 * len(ORDER_EVENT_NAMES) + len(ORDER_DOCUMENTS_EVENT_NAMES)
    assert len(CATALOG) == expected + len(SHIPMENT_EVENT_NAMES) + 2 == 98


def test_names_are_unique_and_follow_the_rule() -> None:
    names = samples.names()
    assert len(set(names)) == len(names)
    for name in (
        "order-issued",
        "order-lines-accepted",
        "single-delivery-order-lines-accepted",
        "order-documents-attached-by-supplier",
        "shipment-issued",
        "order-lines-confirmed-by-buyer",  # the supplier confirms too: suffix kept
        "order-lines-item-details-changed",
        "cancelled-order-lines-reverted",
        "order",
        "shipment",
    ):
        assert name in names
    assert "order-issued-by-buyer" not in names


@pytest.mark.parametrize("sample", WEBHOOKS, ids=lambda sample: sample.name)
def test_every_webhook_sample_parses(sample: samples.Sample) -> None:
    event = parse_webhook(orjson.dumps(sample.body))
    assert event.event_name == sample.event_name
    assert event.known_event_name
    assert event.message_id
    assert event.payload_key == samples.PAYLOAD_KEY_OF_KIND[sample.kind]
    assert event.resource_id and event.number


def test_message_ids_are_unique_and_stable() -> None:
    ids = [sample.body["meta"]["messageId"] for sample in WEBHOOKS]
    assert len(set(ids)) == len(ids)
    samples.catalog.cache_clear()
    assert [s.body["meta"]["messageId"] for s in samples.catalog() if s.is_webhook] == ids


def test_body_is_a_fresh_copy() -> None:
    sample = samples.get_sample("order-issued")
    sample.body["eventName"] = "Changed"
    assert sample.body["eventName"] == "OrderIssuedByBuyer"


def lines(body: dict[str, Any]) -> list[dict[str, Any]]:
    key = next(k for k in ("orderEvent", "singleDeliveryOrderEvent") if k in body)
    result: list[dict[str, Any]] = body[key]["lines"]
    return result


def test_rejected_lines_are_rejected() -> None:
    rejected = lines(by_name("order-lines-rejected"))
    assert rejected and all(line["status"]["processStatus"] == "Rejected" for line in rejected)
    assert all("confirmedLine" not in line for line in rejected)


def test_proposal_carries_an_open_request_that_shows_in_the_including_fields() -> None:
    (line,) = lines(by_name("order-changes-proposed"))
    proposal = line["supplierLine"]["requests"]["proposal"]
    assert proposal["status"] == "Open" and proposal["reason"]
    assert line["status"]["inProgressStatus"] == "OpenSupplierProposal"
    assert line["deliveryScheduleIncludingRequests"] != line["deliverySchedule"]
    assert [d["date"] for d in line["deliveryScheduleIncludingRequests"]] == [
        d["date"] for d in proposal["deliverySchedule"]
    ]
    assert line["pricesIncludingRequests"] != line["prices"]


def test_approved_proposal_becomes_the_confirmed_values() -> None:
    (line,) = lines(by_name("order-changes-proposal-approved"))
    proposal = line["supplierLine"]["requests"]["proposal"]
    assert proposal["status"] == "Approved"
    assert line["confirmedLine"]["deliverySchedule"] == proposal["deliverySchedule"]
    assert line["status"]["processStatus"] == "Confirmed"


def test_reopen_requests_sit_on_the_side_that_asked() -> None:
    (buyer,) = lines(by_name("order-lines-reopen-requested-by-buyer"))
    assert buyer["buyerLine"]["requests"]["reopenRequest"]["status"] == "Open"
    (supplier,) = lines(by_name("order-lines-reopen-requested-by-supplier"))
    assert supplier["supplierLine"]["requests"]["reopenRequest"]["status"] == "Open"
    assert supplier["status"]["inProgressStatus"] == "OpenSupplierReopenRequest"


def test_accepted_lines_confirm_the_requested_values() -> None:
    accepted = lines(by_name("order-lines-accepted"))
    assert len(accepted) == 2
    for line in accepted:
        assert line["status"]["processStatus"] == "Confirmed"
        confirmed = line["confirmedLine"]["deliverySchedule"]
        assert confirmed == line["buyerLine"]["deliverySchedule"]


def test_cancelled_lines_are_cancelled_in_both_statuses() -> None:
    (line,) = lines(by_name("order-lines-cancelled"))
    assert line["status"] == {"processStatus": "Cancelled", "logisticsStatus": "Cancelled"}


def test_header_only_event_has_no_lines() -> None:
    assert lines(by_name("order-contact-reassigned-by-buyer")) == []


def test_single_delivery_splits_lines_and_uses_status_line() -> None:
    split = lines(by_name("single-delivery-order-changes-proposed"))
    assert len(split) == 2  # line 10 has two deliveries
    first, second = split
    assert first["buyerLine"]["position"] == "10"
    assert second["buyerLine"]["position"] == ""
    assert second["buyerLine"]["originalPosition"] == "10"
    for line in split:
        assert "deliverySchedule" not in line
        status_line = line["statusLine"]
        assert status_line["scheduledDelivery"] != status_line["scheduledDeliveryInclRequests"]
        assert status_line["prices"] != status_line["pricesInclRequests"]
    event = parse_webhook(orjson.dumps(by_name("single-delivery-order-changes-proposed")))
    assert event.kind is EventKind.SINGLE_DELIVERY_ORDER
    assert event.changed_lines == ("10", second["id"])


def test_documents_events_carry_documents_on_the_attaching_side() -> None:
    supplier = parse_webhook(orjson.dumps(by_name("order-documents-attached-by-supplier")))
    assert supplier.kind is EventKind.ORDER_DOCUMENTS and len(supplier.documents) == 2
    body = by_name("order-documents-attached-by-buyer")
    payload = body["orderDocumentsEvent"]
    assert payload["buyerOrder"]["documents"] and not payload["supplierOrder"]["documents"]
    assert payload["lines"][0]["buyerLine"]["documents"]


def test_shipment_reissue_changes_some_lines_and_not_others() -> None:
    payload = by_name("shipment-reissued")["shipment"]
    result = changes.shipment_line_changes(payload)
    assert [item.key for item in result.changed] == ["LS-2025-11208/2"]
    assert len(result.unchanged) == 2


def test_shipment_issue_changes_every_line_and_approval_none() -> None:
    issued = changes.shipment_line_changes(by_name("shipment-issued")["shipment"])
    assert len(issued.changed) == 3 and not issued.unchanged
    approved = by_name("shipment-approved")["shipment"]
    assert approved["status"]["processStatus"] == "Approved"
    assert not changes.shipment_line_changes(approved).changed
    rejected = by_name("shipment-rejected")["shipment"]["status"]
    assert rejected["processStatus"] == "Rejected" and rejected["processStatusReason"]


def test_shipment_document_attached_is_the_only_changed_document() -> None:
    payload = by_name("shipment-document-attached-by-buyer")["shipment"]
    result = changes.shipment_document_changes(payload)
    assert [document["code"] for _, document in result.changed] == ["GR-2025-88214"]


def test_full_order_is_an_api_object_with_one_newer_line() -> None:
    sample = samples.get_sample("order")
    assert sample.kind == "order_object" and sample.event_name is None
    order = sample.body
    assert "id" in order and "eventName" not in order and len(order["lines"]) == 3
    result = changes.order_line_changes(order)
    assert [changes.order_line_key(line) for line in result.changed] == ["30"]


def test_full_shipment_is_an_api_object() -> None:
    shipment = samples.get_sample("shipment").body
    assert shipment["id"].endswith("LS-2025-11208") and "eventName" not in shipment


def test_unknown_name_suggests_the_nearest() -> None:
    with pytest.raises(UnknownSample) as caught:
        samples.get_sample("order-isued")
    message = str(caught.value)
    assert "order-issued" in message and "\n" not in message


def test_event_name_finds_the_delivery_schedule_sample() -> None:
    assert samples.get_sample("OrderLinesAcceptedBySupplier").name == "order-lines-accepted"


def test_samples_show_xml_is_the_txml_of_the_same_event() -> None:
    from tcwebhook import txml
    from tcwebhook.events import parse_webhook, parse_webhook_object
    from tests.helpers.cli import in_process

    shown = in_process("samples", "show", "order-issued", "--xml")
    assert shown.returncode == 0, shown.stderr
    as_xml = parse_webhook_object(txml.from_xml(shown.stdout.strip().encode(), txml.XmlLimits()))
    as_json = parse_webhook(in_process("samples", "show", "order-issued", "--json").stdout.encode())
    assert (as_xml.kind, as_xml.event_name, as_xml.number, as_xml.changed_lines) == (
        as_json.kind,
        as_json.event_name,
        as_json.number,
        as_json.changed_lines,
    )
    refused = in_process("samples", "show", "shipment-issued", "--xml")
    assert refused.returncode == 2 and "JSON only" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
