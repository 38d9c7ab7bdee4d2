"""tXML, Tradecloud's XML form of the order webhook: our one-to-one rendering of a JSON body, and
a loose, safe reader back to the JSON-shaped dict ``events.parse_webhook_object`` takes. Pure.

Tradecloud does not publish the element names of its webhook tXML (docs/tradecloud.md#txml), so
the reader accepts more than the writer writes: any root, element order, unknown elements,
namespace prefixes, a single or repeated item, and arrays with or without a wrapper element. It
refuses what could hurt the receiver: any DTD (so no entity of any kind), nesting deeper and bodies
larger than the limits given, and bytes that are not UTF-8.

Every leaf is read as text, the digits of a number exactly as sent: XML has no types, and guessing
them would turn a PO number ``"00123"`` into ``123``. ``events.py`` reads ids, positions and
timestamps as text already, so ``parse_webhook_object(from_xml(body, limits))`` finds the same
event, order, PO number and lines as the JSON body would give.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from xml.parsers import expat

import orjson

from tcwebhook.errors import PayloadError

DEFAULT_ROOT = "webhook"
XML_CONTENT_TYPE = "application/xml"

# The arrays whose items have an element name of their own (docs/tradecloud.md#txml); every
# other array repeats the element of its key.
ITEM_ELEMENTS: dict[str, str] = {
    "lines": "line",
    "deliverySchedule": "deliveryScheduleLine",
}
_ARRAY_OF_ITEM = {item: key for key, item in ITEM_ELEMENTS.items()}
# The arrays of Tradecloud's order, order documents and shipment bodies: read as arrays even when
# they hold one item. An array under any other key with one item reads back as that item.
KNOWN_ARRAYS: frozenset[str] = frozenset(
    {
        *ITEM_ELEMENTS,
        "addressLines",
        "contacts",
        "deliveryHistory",
        "deliveryScheduleIncludingRequests",
        "destinations",
        "documents",
        "invoiceNumbers",
        "labels",
        "loadCarriers",
        "names",
        "notes",
        "properties",
    }
)

# An element name we write: ASCII, no ':' (the reader drops namespace prefixes).
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")
# Characters XML 1.0 cannot carry at all, even as a character reference.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_FIRST_BYTE = re.compile(rb"(?:\xef\xbb\xbf)?[ \t\r\n]*([<{\[])")
_MAX_WRITE_DEPTH = 256


@dataclass(frozen=True)
class XmlLimits:
    """What one tXML body may cost; the defaults are the receiver's (server.max_body_bytes and
    server.limits.max_json_depth)."""

    max_bytes: int = 10 * 1024 * 1024
    max_depth: int = 64  # nested elements, the root being 1


@dataclass(frozen=True)
class TxmlBody:
    """A tXML body as read: its root element's name, and its fields as in the JSON body."""

    root: str
    fields: dict[str, Any]


def looks_like_xml(body: bytes, content_type: str | None) -> bool:
    """Whether ``body`` is tXML: its first non-space byte says so when it is ``<`` or ``{``/``[``
    (a missing or wrong header is common, docs/tradecloud.md#txml); else the Content-Type does."""
    first = _FIRST_BYTE.match(body)
    if first is not None:
        return first.group(1) == b"<"
    if not content_type:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type in ("application/xml", "text/xml") or media_type.endswith("+xml")


# ----------------------------------------------------------------------------------------------
# Writing


def to_xml(payload: Mapping[str, Any], root: str = DEFAULT_ROOT) -> bytes:
    """The body as tXML (UTF-8, no indentation), by the mapping in docs/tradecloud.md#txml.

    Numbers are written as orjson writes them, a ``Decimal`` with all its digits (``json_for_xml``
    keeps a JSON text's own); null members, empty arrays and empty objects are left out, since tXML
    has no form for them.
    """
    _check_name(root, "the root element")
    parts = ['<?xml version="1.0" encoding="UTF-8"?>', f"<{root}>"]
    _write_members(payload, parts, root, 1)
    parts.append(f"</{root}>")
    return "".join(parts).encode("utf-8")


def json_for_xml(text: bytes) -> Any:
    """A JSON text as ``to_xml`` should render it: every number as its JSON text, digit for digit
    (``10.50`` stays ``10.50``, ``1e3`` stays ``1e3``). The text must be valid JSON."""
    try:
        return json.loads(text, parse_float=str, parse_int=str)
    except (ValueError, RecursionError):
        raise PayloadError("the body is not JSON") from None


def _write_members(members: Mapping[str, Any], parts: list[str], where: str, depth: int) -> None:
    if depth > _MAX_WRITE_DEPTH:
        raise PayloadError(f"{where} nests deeper than {_MAX_WRITE_DEPTH} levels")
    for key, value in members.items():
        if not isinstance(key, str) or not _NAME.match(key):
            # ascii(): the key is the user's, and may hold anything, a terminal escape included
            raise PayloadError(
                f"the key {ascii(key)[:60]} in {where} is not a plain XML element name "
                "(ASCII letters, digits, '_', '.', '-')"
            )
        path = f"{where}.{key}"
        if key in _ARRAY_OF_ITEM:
            raise PayloadError(
                f"the key at {path} cannot be written as tXML: <{key}> is an item of "
                f"'{_ARRAY_OF_ITEM[key]}'"
            )
        if value is None or (isinstance(value, Mapping | list | tuple) and not value):
            continue
        if isinstance(value, list | tuple):
            element = ITEM_ELEMENTS.get(key, key)
            for index, item in enumerate(value):
                if isinstance(item, list | tuple):
                    raise PayloadError(
                        f"{path}.{index} is an array inside an array, which tXML cannot write"
                    )
                _write_element(element, item, parts, f"{path}.{index}", depth)
        else:
            _write_element(key, value, parts, path, depth)


def _write_element(name: str, value: Any, parts: list[str], where: str, depth: int) -> None:
    if value is None or (isinstance(value, Mapping) and not value):
        parts.append(f"<{name}/>")
        return
    parts.append(f"<{name}>")
    if isinstance(value, Mapping):
        _write_members(value, parts, where, depth + 1)
    else:
        parts.append(_text(value, where))
    parts.append(f"</{name}>")


def _text(value: Any, where: str) -> str:
    if isinstance(value, str):
        bad = _NOT_XML.search(value)
        if bad is not None:
            raise PayloadError(
                f"{where} holds the character U+{ord(bad.group()):04X}, which XML cannot carry"
            )
        return value.translate(_ESCAPES)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return orjson.dumps(value).decode()  # the digits replay's JSON has
    if isinstance(value, Decimal) and value.is_finite():
        return str(value)
    raise PayloadError(f"{where} holds {ascii(value)[:40]}, which is no JSON value")


def _check_name(name: str, what: str) -> None:
    if not _NAME.match(name):
        raise PayloadError(
            f"{what} {ascii(name)[:60]} is not a plain XML element name "
            "(ASCII letters, digits, '_', '.', '-')"
        )


# ----------------------------------------------------------------------------------------------
# Reading


def from_xml(body: bytes, limits: XmlLimits) -> dict[str, Any]:
    """The fields of a tXML body as the JSON body would hold them (leaves as text)."""
    return read_xml(body, limits).fields


def read_xml(body: bytes, limits: XmlLimits) -> TxmlBody:
    """Read a tXML body loosely and safely; a PayloadError in one line when it cannot be read."""
    if len(body) > limits.max_bytes:
        raise PayloadError(
            f"the tXML body has {len(body)} bytes, more than the limit of {limits.max_bytes}"
        )
    if not body.strip():
        raise PayloadError("body is empty; expected a Tradecloud webhook in tXML")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as bad:
        raise PayloadError(
            f"body is not UTF-8 text (invalid byte at offset {bad.start}); "
            "Tradecloud sends UTF-8 tXML"
        ) from None
    # Space before the XML declaration is an error in XML, and harmless: skip it, counting lines.
    start = body
    if body[:1].isspace():
        body = body.lstrip(b" \t\r\n")
    skipped_lines = start[: len(start) - len(body)].count(b"\n")
    reader = _Reader(limits.max_depth)
    parser = expat.ParserCreate(encoding="UTF-8")  # whatever the XML declaration says
    reader.attach(parser)
    try:
        parser.Parse(body, True)
    except expat.ExpatError as exc:
        raise PayloadError(
            f"body is not well-formed XML: {expat.ErrorString(exc.code)} "
            f"at line {exc.lineno + skipped_lines} column {exc.offset + 1}"
        ) from None
    except _Refused as refused:
        line = parser.CurrentLineNumber + skipped_lines
        raise PayloadError(
            f"{refused} (line {line} column {parser.CurrentColumnNumber + 1})"
        ) from None
    assert reader.result is not None  # expat requires a root element
    return reader.result


class _Refused(Exception):
    """Raised from inside the parser's handlers: stops the parse at once."""


class _Element:
    """An element being read: its children and its text."""

    __slots__ = ("children", "name", "nil", "text")

    def __init__(self, name: str, nil: bool) -> None:
        self.name = name
        self.nil = nil
        self.children: list[tuple[str, str, Any]] = []  # (element name, JSON key, value)
        self.text: list[str] = []


class _Reader:
    """expat handlers that build the JSON-shaped tree with a stack, never recursing."""

    def __init__(self, max_depth: int) -> None:
        self.max_depth = max_depth
        self.stack: list[_Element] = []
        self.result: TxmlBody | None = None

    def attach(self, parser: Any) -> None:
        parser.buffer_text = True
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        parser.StartDoctypeDeclHandler = self.refuse_dtd
        parser.EntityDeclHandler = self.refuse_dtd
        parser.UnparsedEntityDeclHandler = self.refuse_dtd
        parser.ExternalEntityRefHandler = self.refuse_dtd
        parser.StartElementHandler = self.start
        parser.EndElementHandler = self.end
        parser.CharacterDataHandler = self.characters

    def refuse_dtd(self, *_: Any) -> None:
        raise _Refused(
            "the tXML body has a DOCTYPE or entity declaration, which tcwebhook refuses "
            "(Tradecloud sends none)"
        )

    def start(self, name: str, attributes: dict[str, str]) -> None:
        if len(self.stack) >= self.max_depth:
            raise _Refused(
                f"the tXML body nests elements deeper than {self.max_depth} levels "
                "(server.limits.max_json_depth)"
            )
        nil = bool(attributes) and any(
            _local(attr) == "nil" and value == "true" for attr, value in attributes.items()
        )
        self.stack.append(_Element(_local(name), nil))

    def characters(self, text: str) -> None:
        self.stack[-1].text.append(text)

    def end(self, _: str) -> None:
        element = self.stack.pop()
        if self.stack:
            key = _ARRAY_OF_ITEM.get(element.name, element.name)
            self.stack[-1].children.append((element.name, key, _value(element)))
            return
        if element.nil or not element.children:
            if "".join(element.text).strip():
                raise _Refused("the tXML root element holds text, not the webhook's fields")
            self.result = TxmlBody(element.name, {})
        else:
            self.result = TxmlBody(element.name, _fields(element))


def _local(name: str) -> str:
    """The name without its namespace prefix."""
    return name.rpartition(":")[2]


def _value(element: _Element) -> Any:
    """An element as JSON: null (xsi:nil), text, an object, or the items of a wrapper element."""
    if element.nil:
        return None
    if not element.children:
        return "".join(element.text)
    if element.name in KNOWN_ARRAYS and _wraps_items(element):
        _check_no_text(element)
        return _Items(value for _, _, value in element.children)
    return _fields(element)


def _fields(element: _Element) -> dict[str, Any]:
    """The children of an element as the members of a JSON object."""
    _check_no_text(element)
    fields: dict[str, Any] = {}
    for _, key, value in element.children:
        if key in KNOWN_ARRAYS:
            items: list[Any] = fields.setdefault(key, [])
            if isinstance(value, _Items):
                items.extend(value)
            else:
                items.append(value)
        elif key not in fields:
            fields[key] = value
        elif isinstance(fields[key], _Repeated):
            fields[key].append(value)
        else:
            fields[key] = _Repeated([fields[key], value])
    return {key: list(value) if isinstance(value, list) else value for key, value in fields.items()}


def _check_no_text(element: _Element) -> None:
    if any(part.strip() for part in element.text):
        raise _Refused("an element of the tXML body holds both text and elements")


class _Items(list[Any]):
    """The items of a wrapper element (``<lines><line/>…</lines>``), for the parent's array."""


class _Repeated(list[Any]):
    """The values of an element repeated under one parent: an array of an unknown key."""


def _wraps_items(element: _Element) -> bool:
    """``<documents><document/>…</documents>``: every child is one item of the array."""
    item_names = {name for name, _, _ in element.children}
    if len(item_names) != 1:
        return False
    (item,) = item_names
    array = element.name
    return (
        ITEM_ELEMENTS.get(array) == item
        or array == item + "s"
        or (item.endswith("y") and array == item[:-1] + "ies")
    )
