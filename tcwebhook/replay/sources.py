"""Where replayed events come from: JSON or tXML files, directories, standard input, built-in
samples and stored events (``event:ID``), each as Tradecloud would send it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

import orjson

from tcwebhook.errors import PayloadError, ReplaySourceError
from tcwebhook.protocol import EventKind, Resource
from tcwebhook.replay.recovered import RECOVERED_KINDS, as_webhook, is_recovered
from tcwebhook.txml import XmlLimits, looks_like_xml, read_xml

# How a body is sent: JSON, or tXML (docs/tradecloud.md#txml) with Content-Type application/xml.
BodyFormat = Literal["json", "xml"]


@dataclass(frozen=True)
class Source:
    """One event to send: where it came from, and its body as JSON fields."""

    label: str
    body: dict[str, Any]
    raw: bytes | None = None  # the exact bytes to send when the body is not edited
    # A stored GET notification: sent as one (GET with this id), whatever --method says.
    notification: tuple[Resource, str] | None = None
    body_format: BodyFormat = "json"  # what ``raw`` holds; a tXML source's body is read from it
    xml_root: str | None = None  # a tXML source's root element, kept when its body is edited
    # The JSON text the body was read from, so that tXML carries its numbers digit for digit.
    json_text: bytes | None = None


STORED_PREFIX = "event:"


def load_sources(
    specs: Sequence[str], stdin: BinaryIO | None = None, store_url: str | None = None
) -> list[Source]:
    """Resolve SOURCE arguments: a JSON file, a directory of them, ``-``, a sample name, or
    ``event:ID`` (a stored event: a webhook with its original bytes, a GET notification as a
    GET, a recovered change as the webhook Tradecloud would have sent for it)."""
    from tcwebhook import samples

    sources: list[Source] = []
    for spec in specs:
        path = Path(spec)
        if spec.startswith(STORED_PREFIX) and store_url is not None:
            sources.append(_stored_event(spec[len(STORED_PREFIX) :], store_url))
        elif spec == "-":
            if stdin is None:
                raise ReplaySourceError("'-' needs JSON or tXML on standard input")
            sources.append(_source("<stdin>", stdin.read()))
        elif path.is_dir():
            files = sorted(
                (p for p in path.iterdir() if p.suffix in (".json", ".xml") and p.is_file()),
                key=lambda p: p.name,
            )
            if not files:
                raise ReplaySourceError(f"directory {spec} holds no *.json or *.xml files")
            sources.extend(_read_file(file) for file in files)
        elif path.exists() or spec.endswith((".json", ".xml")) or "/" in spec or "\\" in spec:
            sources.append(_read_file(path))
        else:
            sample = samples.get_sample(spec)
            sources.append(Source(sample.name, sample.body))
    if not sources:
        raise ReplaySourceError("nothing to send: give a file, a directory, '-' or a sample name")
    return sources


def _stored_event(event_id: str, store_url: str) -> Source:
    from tcwebhook.store import open_store

    if not event_id.isdigit():
        raise ReplaySourceError(f"'{STORED_PREFIX}{event_id}': the event id must be a number")
    store = open_store(store_url)
    try:
        event = store.get_event(int(event_id))
    finally:
        store.close()
    label = f"event #{event.id}"
    if event.kind in (EventKind.ORDER_NOTIFICATION, EventKind.SHIPMENT_NOTIFICATION):
        if not event.resource_id:
            raise ReplaySourceError(f"{label} is a GET notification without an id to send")
        return Source(label, {}, notification=(EventKind(event.kind).resource, event.resource_id))
    if not event.body:
        raise ReplaySourceError(f"{label} has no body to send")
    if event.kind in RECOVERED_KINDS:
        return _recovered(label, as_webhook(event.body, label))
    if looks_like_xml(event.body, None):
        return _xml_source(label, event.body)
    return Source(label, _parse_json(event.body, label), raw=event.body)


def _read_file(path: Path) -> Source:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ReplaySourceError(
            f"file {path} does not exist (for a built-in sample, give its name without '.json')"
        ) from None
    except OSError as exc:
        raise ReplaySourceError(f"cannot read {path}: {exc.strerror or exc}") from None
    return _source(str(path), data)


def _source(label: str, data: bytes) -> Source:
    """A file's or standard input's event, JSON or tXML by its first byte; a recovered event's
    body (e.g. from 'events show --json') becomes the webhook Tradecloud would have sent."""
    if looks_like_xml(data, None):
        return _xml_source(label, data)
    body = _parse_json(data, label)
    if is_recovered(body):
        return _recovered(label, as_webhook(data, label))
    return Source(label, body, json_text=data)


def _xml_source(label: str, data: bytes) -> Source:
    """A tXML body, sent as it is; its fields say where it goes and what it is."""
    try:
        read = read_xml(data, XmlLimits())
    except PayloadError as exc:
        raise ReplaySourceError(f"{label}: {exc}") from None
    return Source(label, read.fields, raw=data, body_format="xml", xml_root=read.root)


def _recovered(label: str, webhook: bytes) -> Source:
    return Source(label, _parse_json(webhook, label), raw=webhook)


def _parse_json(data: bytes, where: str) -> dict[str, Any]:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ReplaySourceError(
            f"{where}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}"
        ) from None
    if not isinstance(value, dict):
        raise ReplaySourceError(f"{where}: must hold a JSON object (a webhook body)")
    return value
