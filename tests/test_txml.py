"""tXML (tcwebhook/txml.py): the documented JSON → XML rendering, and the safe reader back."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tcwebhook import events, samples
from tcwebhook.errors import PayloadError
from tcwebhook.txml import (
    ITEM_ELEMENTS,
    KNOWN_ARRAYS,
    XmlLimits,
    from_xml,
    json_for_xml,
    looks_like_xml,
    read_xml,
    to_xml,
)

LIMITS = XmlLimits()
WEBHOOK_FIELDS = (
    "kind",
    "event_name",
    "message_id",
    "resource_id",
    "number",
    "payload_key",
    "changed_lines",
    "documents",
    "last_updated_at",
)


def xml_view(value: Any, key: str | None = None) -> Any:
    """What a JSON value becomes after to_xml and from_xml, by the rules in docs/tradecloud.md#txml
    (written here apart from the module, as the test's own statement of the mapping)."""
    if isinstance(value, dict):
        members = {}
        for name, member in value.items():
            if member is None or (isinstance(member, dict | list) and not member):
                continue
            if isinstance(member, list):
                items = [xml_view(item) for item in member]
                if name not in KNOWN_ARRAYS and len(items) == 1:
                    members[name] = items[0]
                else:
                    members[name] = items
            elif name in KNOWN_ARRAYS:
                members[name] = [xml_view(member)]
            else:
                members[name] = xml_view(member)
        return members or ""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, float):
        return orjson.dumps(value).decode()
    return value


def read(xml: str | bytes, limits: XmlLimits = LIMITS) -> dict[str, Any]:
    return from_xml(xml.encode() if isinstance(xml, str) else xml, limits)


# ----------------------------------------------------------------------------------------------
# The round trip


@pytest.mark.parametrize("sample", samples.catalog(), ids=lambda sample: sample.name)
def test_every_sample_reads_back_as_it_was_written(sample: samples.Sample) -> None:
    body = sample.body
    assert from_xml(to_xml(body), LIMITS) == xml_view(body)


@pytest.mark.parametrize(
    "sample",
    [s for s in samples.catalog() if s.is_webhook and s.kind != "shipment"],
    ids=lambda sample: sample.name,
)
def test_the_parser_finds_in_txml_what_it_finds_in_json(sample: samples.Sample) -> None:
    from_json = events.parse_webhook(orjson.dumps(sample.body))
    from_txml = events.parse_webhook_object(from_xml(to_xml(sample.body), LIMITS))
    for field in WEBHOOK_FIELDS:
        assert getattr(from_txml, field) == getattr(from_json, field), field
    # Not vacuous: whatever the sample carries was found.
    assert len(from_txml.changed_lines) == len(from_json.payload.get("lines", []))
    assert from_txml.resource_id and from_txml.message_id


def test_numbers_keep_every_digit() -> None:
    body = {
        "quantity": Decimal("10.500"),
        "price": Decimal("0.000000000000000000123456789012345678901"),
        "big": 123456789012345678901234567890,
        "float": 2.5,
        "exp": Decimal("1E+3"),
        "flag": False,
    }
    fields = from_xml(to_xml(body), LIMITS)
    assert Decimal(fields.pop("price")) == body["price"]
    assert fields == {
        "quantity": "10.500",
        "big": "123456789012345678901234567890",
        "float": "2.5",
        "exp": "1E+3",
        "flag": "false",
    }


def test_a_json_text_keeps_the_text_of_its_numbers() -> None:
    text = b'{"a": 0.000000000000000000123456789012345678901, "b": 1e3, "c": -0, "d": 10.50}'
    xml = to_xml(json_for_xml(text))
    assert b"<a>0.000000000000000000123456789012345678901</a><b>1e3</b><c>-0</c><d>10.50</d>" in xml
    with pytest.raises(PayloadError, match="not JSON"):
        json_for_xml(b"{")


def test_arrays_are_repeated_elements_named_as_documented() -> None:
    body = {
        "orderEvent": {
            "lines": [
                {"id": "a", "deliverySchedule": [{"quantity": 1}, {"quantity": 2}]},
                {"id": "b", "deliverySchedule": [{"quantity": 3}]},
            ],
            "notes": ["one"],
            "tags": ["x", "y"],
        }
    }
    xml = to_xml(body).decode()
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?><webhook><orderEvent><line>')
    assert xml.count("<line>") == 2 and "<lines>" not in xml
    assert xml.count("<deliveryScheduleLine>") == 3
    assert "<notes>one</notes>" in xml and "<tags>x</tags><tags>y</tags>" in xml
    event = from_xml(xml.encode(), LIMITS)["orderEvent"]
    assert [line["id"] for line in event["lines"]] == ["a", "b"]
    assert event["lines"][1]["deliverySchedule"] == [{"quantity": "3"}]  # one item: still a list
    assert event["notes"] == ["one"] and event["tags"] == ["x", "y"]


def test_text_is_kept_exactly_and_escaped() -> None:
    text = " a < b & c > d\r\n\ttab ]]> 'q' \"qq\" é 😀 "
    xml = to_xml({"description": text, "empty": ""})
    assert from_xml(xml, LIMITS) == {"description": text, "empty": ""}
    assert to_xml({"x": 1}, root="SendOrderByBuyer").endswith(b"</SendOrderByBuyer>")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"a": "\x1b[31m"}, "U+001B"),
        ({"a": "\x00"}, "U+0000"),
        ({"bad key": 1}, "the key 'bad key' in webhook is not a plain XML element name"),
        ({"a": {"\x1b[31m": 1}}, "the key '\\x1b[31m' in webhook.a is not a plain XML"),
        ({"ns:key": 1}, "not a plain XML element name"),
        ({"line": {"id": 1}}, "<line> is an item of 'lines'"),
        ({"a": [[1, 2]]}, "an array inside an array"),
        ({"a": float("nan")}, "no JSON value"),
        ({"a": Decimal("Infinity")}, "no JSON value"),
        ({"a": object()}, "no JSON value"),
    ],
)
def test_what_xml_cannot_carry_is_refused_in_one_line(body: dict[str, Any], fragment: str) -> None:
    with pytest.raises(PayloadError) as caught:
        to_xml(body)
    message = str(caught.value)
    assert fragment in message
    assert not any(ord(char) < 0x20 for char in message)  # one line, no terminal escapes


def test_a_deep_body_is_refused_not_a_crash() -> None:
    deep: dict[str, Any] = {"v": 1}
    for _ in range(2000):
        deep = {"a": deep}
    with pytest.raises(PayloadError, match="nests deeper"):
        to_xml(deep)


# A JSON-like tree of the shapes tXML can carry: keys from Tradecloud's arrays and others, text with
# markup characters, numbers of every kind; no array directly inside an array.
_KEYS = st.sampled_from(
    [*sorted(KNOWN_ARRAYS), "id", "name", "position", "quantity", "buyerLine", "meta", "x_1", "a.b"]
)
_TEXT = st.text(
    st.characters(
        blacklist_categories=("Cs",),
        blacklist_characters=[chr(c) for c in range(0x20) if c not in (9, 10, 13)] + ["\ufffe"],
    ),
    max_size=12,
)
_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.decimals(allow_nan=False, allow_infinity=False)
    | _TEXT
)


def _objects(children: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    item = _LEAVES | st.dictionaries(_KEYS, children, max_size=4)
    return st.dictionaries(_KEYS, children | st.lists(item, max_size=3), max_size=5)


_TREES = st.recursive(_LEAVES, _objects, max_leaves=30)


def _has_wrapper_shape(value: Any) -> bool:
    """The one shape the reader takes otherwise: an item of a known array whose only members are
    its singular (an item ``{"name": …}`` of ``names``) reads as a wrapper, ``<names><name>``."""
    if isinstance(value, list):
        return any(_has_wrapper_shape(item) for item in value)
    if not isinstance(value, dict):
        return False
    for key, member in value.items():
        items = member if isinstance(member, list) else [member]
        if key in KNOWN_ARRAYS and any(_reads_as_wrapper(item, key) for item in items):
            return True
        if _has_wrapper_shape(member):
            return True
    return False


def _reads_as_wrapper(item: Any, array: str) -> bool:
    if not isinstance(item, dict):
        return False
    written = {
        ITEM_ELEMENTS.get(key, key)
        for key, member in item.items()
        if member is not None and not (isinstance(member, dict | list) and not member)
    }
    if len(written) != 1:
        return False
    (name,) = written
    return ITEM_ELEMENTS.get(array) == name or array in (name + "s", name[:-1] + "ies")


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(_KEYS, _TREES, max_size=6))
def test_any_json_like_tree_reads_back_by_the_rules(tree: dict[str, Any]) -> None:
    assume(not _has_wrapper_shape(tree))
    xml = to_xml(tree)
    read_back = from_xml(xml, LIMITS)
    assert read_back == (xml_view(tree) or {})
    assert from_xml(to_xml(read_back), LIMITS) == read_back  # stable after one trip


# ----------------------------------------------------------------------------------------------
# The loose reader: what Tradecloud's unpublished form may look like


def test_element_order_namespaces_whitespace_and_unknowns_do_not_matter() -> None:
    xml = """<?xml version="1.0" encoding="UTF-8"?>
    <tc:OrderEventWebhook xmlns:tc="urn:tradecloud" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
      <!-- a comment -->
      <tc:meta><tc:messageId>m-1</tc:messageId></tc:meta>
      <tc:orderEvent version="2">
        <tc:line><tc:buyerLine><tc:position>0020</tc:position></tc:buyerLine></tc:line>
        <tc:buyerOrder><tc:purchaseOrderNumber>PO/00123</tc:purchaseOrderNumber></tc:buyerOrder>
        <tc:somethingNew><![CDATA[<kept> & raw]]></tc:somethingNew>
        <tc:orderId>o-1</tc:orderId>
        <tc:remark xsi:nil="true"/>
      </tc:orderEvent>
      <tc:eventName>OrderLinesAcceptedBySupplier</tc:eventName>
      <?ignored processing instruction?>
    </tc:OrderEventWebhook>"""
    body = read_xml(xml.encode(), LIMITS)
    assert body.root == "OrderEventWebhook"
    assert body.fields["orderEvent"]["somethingNew"] == "<kept> & raw"
    assert body.fields["orderEvent"]["remark"] is None
    event = events.parse_webhook_object(body.fields)
    assert (event.event_name, event.message_id, event.resource_id, event.number) == (
        "OrderLinesAcceptedBySupplier",
        "m-1",
        "o-1",
        "PO/00123",
    )
    assert event.changed_lines == ("0020",)  # text, not the number 20


@pytest.mark.parametrize(
    "lines",
    [
        "<line><id>1</id></line><line><id>2</id></line>",
        "<lines><line><id>1</id></line><line><id>2</id></line></lines>",
        "<lines><id>1</id></lines><lines><id>2</id></lines>",
        "<line><id>1</id></line><lines><line><id>2</id></line></lines>",
    ],
)
def test_lines_are_found_with_or_without_a_wrapper(lines: str) -> None:
    fields = read(f"<r><orderEvent>{lines}</orderEvent></r>")
    assert fields["orderEvent"]["lines"] == [{"id": "1"}, {"id": "2"}]


def test_wrapped_and_repeated_arrays_of_other_names() -> None:
    fields = read(
        "<r><party><names><name>A</name><name>B</name></names></party>"
        "<order><documents><document><code>D</code></document></documents>"
        "<properties><property><key>k</key></property></properties></order>"
        "<unknown>1</unknown><unknown>2</unknown><single>3</single></r>"
    )
    assert fields == {
        "party": {"names": ["A", "B"]},
        "order": {"documents": [{"code": "D"}], "properties": [{"key": "k"}]},
        "unknown": ["1", "2"],
        "single": "3",
    }


def test_entities_and_character_references_are_read() -> None:
    assert read("<r><a>&lt;&amp;&gt;&quot;&apos;&#x41;&#66;&#13;</a></r>") == {"a": "<&>\"'AB\r"}
    assert read("\ufeff<r><a>bom</a></r>") == {"a": "bom"}
    assert read('\n \r\n\t<?xml version="1.0"?><r><a>after space</a></r>') == {"a": "after space"}
    with pytest.raises(PayloadError, match="mismatched tag at line 3 column 9"):
        read("\n\n<r><a></r>")
    assert read("<r/>") == {}


def test_the_declared_encoding_is_not_followed() -> None:
    # Tradecloud sends UTF-8; a declaration claiming another encoding must not garble it.
    xml = '<?xml version="1.0" encoding="ISO-8859-1"?><r><a>Präzision</a></r>'
    assert read(xml) == {"a": "Präzision"}


# ----------------------------------------------------------------------------------------------
# The safe reader: hostile XML is refused in one line


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'
        for i in range(1, 10)
    )
    + "]><lolz><a>&lol9;</a></lolz>"
)


@pytest.mark.parametrize(
    "xml",
    [
        BILLION_LAUGHS,
        '<!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/hostname">]><r><a>&e;</a></r>',
        '<!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd"><r><a>x</a></r>',
        '<!DOCTYPE r [<!ENTITY % p SYSTEM "file:///etc/hostname"> %p;]><r/>',
        "<!DOCTYPE r><r><a>x</a></r>",
    ],
    ids=["billion-laughs", "external-entity", "external-dtd", "parameter-entity", "bare-doctype"],
)
def test_any_dtd_is_refused(xml: str) -> None:
    started = time.monotonic()
    with pytest.raises(PayloadError) as caught:
        read(xml)
    assert "DOCTYPE" in str(caught.value) and "\n" not in str(caught.value)
    assert time.monotonic() - started < 5  # refused, not expanded


def test_an_undeclared_entity_is_not_well_formed() -> None:
    with pytest.raises(PayloadError, match="undefined entity at line 1 column 7"):
        read("<r><a>&secret;</a></r>")


def test_depth_and_size_limits() -> None:
    limits = XmlLimits(max_bytes=1000, max_depth=4)
    assert read("<a><b><c><d>x</d></c></b></a>", limits) == {"b": {"c": {"d": "x"}}}
    with pytest.raises(PayloadError, match="deeper than 4 levels"):
        read("<a><b><c><d><e>x</e></d></c></b></a>", limits)
    with pytest.raises(PayloadError, match="deeper than 64 levels"):
        read("<a>" * 100_000 + "</a>" * 100_000)  # stopped at the limit, no recursion
    with pytest.raises(PayloadError, match="1001 bytes, more than the limit of 1000"):
        read("<r>" + "x" * 994 + "</r>", limits)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<r><a>\xff</a></r>", "not UTF-8 text (invalid byte at offset 6)"),
        (b"  \n ", "body is empty"),
        (b"<r><a>x</b></r>", "not well-formed XML: mismatched tag at line 1 column 10"),
        (b"<r><a>x</a>", "not well-formed XML: no element found"),
        (b"<r>text only</r>", "root element holds text"),
        (b"<r><a>x<b>y</b></a></r>", "holds both text and elements"),
        (b"<r>x<a>y</a></r>", "holds both text and elements"),
        (
            b'{"eventName": 1}',
            "not well-formed XML: not well-formed (invalid token) at line 1 column 1",
        ),
    ],
)
def test_unreadable_bodies_say_why_in_one_line(body: bytes, message: str) -> None:
    with pytest.raises(PayloadError) as caught:
        from_xml(body, LIMITS)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_large_body_reads_in_reasonable_time() -> None:
    body = samples.get_sample("order-issued").body
    body["orderEvent"]["lines"] = body["orderEvent"]["lines"] * 250  # ~500 lines: Tradecloud's max
    xml = to_xml(body)
    started = time.monotonic()
    fields = from_xml(xml, LIMITS)
    assert len(fields["orderEvent"]["lines"]) == len(body["orderEvent"]["lines"])
    assert time.monotonic() - started < 20  # wide margin on a loaded machine; about 0.1 s here


# ----------------------------------------------------------------------------------------------
# Recognising tXML


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b"<r/>", "application/xml", True),
        (b"<r/>", "text/xml; charset=utf-8", True),
        (b"<r/>", None, True),
        (b"\xef\xbb\xbf \r\n\t<r/>", "", True),
        (b"<r/>", "application/json", True),  # a wrong header: the body decides
        (b'{"a": 1}', "application/xml", False),
        (b'  {"a": 1}', None, False),
        (b"", "Application/Vnd.Tradecloud+XML", True),
        (b"garbage", "application/soap+xml", True),
        (b"garbage", "application/json", False),
        (b"", None, False),
    ],
)
def test_looks_like_xml(body: bytes, content_type: str | None, expected: bool) -> None:
    assert looks_like_xml(body, content_type) is expected


def test_the_item_table_is_part_of_the_known_arrays() -> None:
    assert set(ITEM_ELEMENTS) <= KNOWN_ARRAYS
