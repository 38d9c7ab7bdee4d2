"""Replaying as tXML: ``--format xml`` and ``.xml`` sources, against an endpoint over TLS that
records what it received."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from tcwebhook import events, samples
from tcwebhook.errors import ReplaySourceError
from tcwebhook.replay import (
    ReplayOptions,
    RetryPolicy,
    Source,
    Target,
    load_sources,
    replay,
)
from tcwebhook.txml import XmlLimits, from_xml, read_xml, to_xml
from tests.helpers.cli import Result as CliResult
from tests.helpers.replay import AUTHORIZATION, TOKEN, Fake

FakeFactory = Callable[[list[int]], Awaitable[Fake]]
Cli = Callable[..., Awaitable[CliResult]]
XML = ReplayOptions(body_format="xml")
LIMITS = XmlLimits()
ORDER_WEBHOOKS = [s for s in samples.catalog() if s.is_webhook and s.kind != "shipment"]


def target(fake: Fake, ca_file: Path, **changes: object) -> Target:
    values: dict[str, object] = {
        "order_url": fake.url + "/order",
        "shipment_url": fake.url + "/shipment",
        "ca_file": ca_file,
        "authorization": AUTHORIZATION,
    }
    values.update(changes)
    return Target(**values)  # type: ignore[arg-type]


def sample_source(name: str) -> Source:
    return Source(name, samples.get_sample(name).body)


def one_line_error(result: CliResult, *fragments: str) -> None:
    assert result.code == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


async def test_every_order_sample_goes_out_as_txml_the_receiver_can_read(
    fake_endpoint: FakeFactory, ca_file: Path
) -> None:
    fake = await fake_endpoint([200])
    sources = [Source(s.name, s.body) for s in ORDER_WEBHOOKS]
    report = await replay(sources, target(fake, ca_file), ReplayOptions(body_format="xml"))
    assert report.all_delivered and len(fake.requests) == len(ORDER_WEBHOOKS) == 88
    for sample, (method, path, headers, body) in zip(ORDER_WEBHOOKS, fake.requests, strict=True):
        assert (method, path) == ("POST", "/hook/order")
        assert headers["Content-Type"] == "application/xml"
        assert headers["Authorization"] == AUTHORIZATION  # as Tradecloud would, auth and all
        assert body == to_xml(sample.body)
        received = events.parse_webhook_object(from_xml(body, LIMITS))
        sent = events.parse_webhook(orjson.dumps(sample.body))
        assert (received.kind, received.event_name, received.message_id) == (
            sent.kind,
            sent.event_name,
            sent.message_id,
        )
        assert received.changed_lines == sent.changed_lines


async def test_json_stays_json_without_the_option(
    fake_endpoint: FakeFactory, ca_file: Path
) -> None:
    fake = await fake_endpoint([200])
    await replay([sample_source("order-issued")], target(fake, ca_file), ReplayOptions())
    (_, _, headers, body) = fake.requests[0]
    assert headers["Content-Type"] == "application/json"
    assert orjson.loads(body) == samples.get_sample("order-issued").body


async def test_a_txml_file_is_sent_byte_for_byte(
    fake_endpoint: FakeFactory, ca_file: Path, tmp_path: Path
) -> None:
    # Tradecloud's own form may differ from ours: a namespace, indentation, a wrapper element.
    xml = (
        b'<?xml version="1.0"?>\n<tc:Event xmlns:tc="urn:tc">\n'
        b"  <tc:eventName>OrderLinesAcceptedBySupplier</tc:eventName>\n"
        b"  <tc:orderEvent><tc:orderId>o-1</tc:orderId>\n"
        b"    <tc:lines><tc:line><tc:buyerLine><tc:position>10</tc:position></tc:buyerLine>"
        b"</tc:line></tc:lines>\n"
        b"  </tc:orderEvent>\n  <tc:meta><tc:messageId>m-1</tc:messageId></tc:meta>\n</tc:Event>\n"
    )
    path = tmp_path / "accepted.xml"
    path.write_bytes(xml)
    fake = await fake_endpoint([200])
    report = await replay(load_sources([str(path)]), target(fake, ca_file), ReplayOptions())
    (_, request_path, headers, body) = fake.requests[0]
    assert body == xml and headers["Content-Type"] == "application/xml"
    assert request_path == "/hook/order"
    result = report.results[0]
    assert (result.event_name, result.message_id) == ("OrderLinesAcceptedBySupplier", "m-1")
    # --format xml changes nothing for it; an edit renders it anew under its own root.
    await replay(load_sources([str(path)]), target(fake, ca_file), XML)
    assert fake.requests[1][3] == xml
    await replay(load_sources([str(path)]), target(fake, ca_file), ReplayOptions(fresh_ids=True))
    edited = read_xml(fake.requests[2][3], LIMITS)
    assert edited.root == "Event"
    assert edited.fields["meta"]["messageId"] not in ("m-1", "")
    assert edited.fields["orderEvent"]["lines"] == [{"buyerLine": {"position": "10"}}]


async def test_a_json_file_keeps_the_digits_of_its_numbers(
    fake_endpoint: FakeFactory, ca_file: Path, tmp_path: Path
) -> None:
    path = tmp_path / "exact.json"
    path.write_bytes(
        b'{"eventName": "OrderLinesUpdatedByBuyer", "orderEvent": {"orderId": "o-2", "lines": '
        b'[{"buyerLine": {"position": 1, "prices": {"netPrice": 12.50, "factor": 1e3}}}]}}'
    )
    fake = await fake_endpoint([200])
    await replay(load_sources([str(path)]), target(fake, ca_file), XML)
    body = fake.requests[0][3]
    assert b"<netPrice>12.50</netPrice><factor>1e3</factor>" in body
    # Edited (--set), the numbers keep their digits too.
    options = ReplayOptions(body_format="xml", assignments=(("orderEvent.orderId", "o-3"),))
    await replay(load_sources([str(path)]), target(fake, ca_file), options)
    assert b"<orderId>o-3</orderId>" in fake.requests[1][3]
    assert b"<netPrice>12.50</netPrice>" in fake.requests[1][3]


async def test_retried_like_tradecloud_with_the_same_txml(
    fake_endpoint: FakeFactory, ca_file: Path
) -> None:
    fake = await fake_endpoint([503, 200])
    retry = RetryPolicy(enabled=True, max_attempts=3, initial_delay=0.01, max_delay=0.05)
    options = ReplayOptions(body_format="xml", retry=retry)
    report = await replay([sample_source("order-issued")], target(fake, ca_file), options)
    assert report.results[0].attempts == 2 and report.all_delivered
    first, second = fake.requests
    assert first[3] == second[3] and second[2]["Content-Type"] == "application/xml"


@pytest.mark.parametrize(
    ("sources", "options", "message"),
    [
        (["shipment-issued"], XML, "Tradecloud sends shipments as JSON only"),
        (["order-issued", "shipment-issued"], XML, "leave out --format xml"),
        (["order"], ReplayOptions(body_format="xml"), "not a webhook body"),
    ],
)
async def test_what_tradecloud_never_sends_as_txml_is_refused_before_sending(
    fake_endpoint: FakeFactory,
    ca_file: Path,
    sources: list[str],
    options: ReplayOptions,
    message: str,
) -> None:
    fake = await fake_endpoint([200])
    with pytest.raises(ReplaySourceError, match=message):
        await replay([sample_source(name) for name in sources], target(fake, ca_file), options)
    assert fake.requests == []


async def test_a_txml_shipment_file_and_json_from_txml_are_refused(tmp_path: Path) -> None:
    shipment = tmp_path / "shipment.xml"
    shipment.write_bytes(to_xml(samples.get_sample("shipment-issued").body))
    order = tmp_path / "order.xml"
    order.write_bytes(to_xml(samples.get_sample("order-issued").body))
    nowhere = Target("https://127.0.0.1:9/order", "https://127.0.0.1:9/shipment")
    with pytest.raises(ReplaySourceError, match=r"shipments as JSON only.*send it as JSON"):
        await replay(load_sources([str(shipment)]), nowhere, ReplayOptions())
    with pytest.raises(ReplaySourceError, match=r"order\.xml is tXML.*leave out --format json"):
        await replay(load_sources([str(order)]), nowhere, ReplayOptions(body_format="json"))
    with pytest.raises(ReplaySourceError, match="--method GET sends none"):
        await replay(load_sources([str(order)]), replace(nowhere, method="GET"), XML)


async def test_txml_sent_as_a_get_notification_carries_its_id(
    fake_endpoint: FakeFactory, ca_file: Path, tmp_path: Path
) -> None:
    path = tmp_path / "order.xml"
    path.write_bytes(to_xml(samples.get_sample("order-issued").body))
    fake = await fake_endpoint([200])
    await replay(load_sources([str(path)]), target(fake, ca_file, method="GET"), ReplayOptions())
    order_id = samples.get_sample("order-issued").body["orderEvent"]["orderId"]
    assert fake.requests[0][:2] == ("GET", f"/hook/order/{order_id}")
    assert fake.requests[0][3] == b""


def test_directories_hold_json_and_txml_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "b.xml").write_bytes(to_xml(samples.get_sample("order-issued").body))
    (tmp_path / "a.json").write_bytes(orjson.dumps(samples.get_sample("order-lines-accepted").body))
    (tmp_path / "c.txt").write_text("not an event")
    loaded = load_sources([str(tmp_path)])
    assert [(Path(s.label).name, s.body_format) for s in loaded] == [
        ("a.json", "json"),
        ("b.xml", "xml"),
    ]


def test_a_broken_txml_file_names_the_file_and_the_place(tmp_path: Path) -> None:
    path = tmp_path / "broken.xml"
    path.write_bytes(b"<r>\n<eventName>x</r>")
    with pytest.raises(
        ReplaySourceError, match=r"broken.xml: body is not well-formed XML: .*line 2"
    ):
        load_sources([str(path)])
    evil = tmp_path / "evil.xml"
    evil.write_bytes(b'<!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/hostname">]><r>&e;</r>')
    with pytest.raises(ReplaySourceError, match=r"evil\.xml: .*DOCTYPE"):
        load_sources([str(evil)])


# ----------------------------------------------------------------------------------------------
# As a user runs it


async def test_cli_format_xml_and_its_refusals(
    cli: Cli, fake_endpoint: FakeFactory, ca_file: Path, tmp_path: Path
) -> None:
    fake = await fake_endpoint([200])
    flags = ["--url", fake.url, "--ca-file", str(ca_file), "--token", TOKEN]
    result = await cli("replay", "order-lines-accepted", "--format", "xml", *flags)
    assert result.code == 0, result
    assert "delivered" in result.stdout
    (_, _, headers, body) = fake.requests[0]
    assert headers["Content-Type"] == "application/xml" and body.startswith(b"<?xml")
    assert headers["Authorization"] == AUTHORIZATION

    stdin = await cli("replay", "-", *flags, stdin=b"  \n" + body)  # tXML on stdin, as it is
    assert stdin.code == 0, stdin
    assert fake.requests[1][3] == b"  \n" + body

    refused = await cli("replay", "shipment-issued", "--format", "XML", *flags)
    one_line_error(refused, "shipment-issued", "JSON only", "leave out --format xml")
    assert len(fake.requests) == 2  # nothing sent

    broken = tmp_path / "broken.xml"
    broken.write_bytes(b"<r><a></r>")
    one_line_error(await cli("replay", str(broken), *flags), "broken.xml", "mismatched tag")
    assert (await cli("replay", "order-issued", "--format", "yaml", *flags)).code == 2
