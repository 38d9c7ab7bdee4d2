"""Where replayed events come from: JSON files, directories, standard input, built-in samples
and stored events (``event:ID``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from tcwebhook.errors import ReplaySourceError


@dataclass(frozen=True)
class Source:
    """One event to send: where it came from, and its JSON body."""

    label: str
    body: dict[str, Any]
    raw: bytes | None = None  # the exact bytes to send when the body is not edited


STORED_PREFIX = "event:"


def load_sources(
    specs: Sequence[str], stdin: BinaryIO | None = None, store_url: str | None = None
) -> list[Source]:
    """Resolve SOURCE arguments: a JSON file, a directory of them, ``-``, a sample name, or
    ``event:ID`` (a stored event, sent with its original bytes)."""
    from tcwebhook import samples

    sources: list[Source] = []
    for spec in specs:
        path = Path(spec)
        if spec.startswith(STORED_PREFIX) and store_url is not None:
            sources.append(_stored_event(spec[len(STORED_PREFIX) :], store_url))
        elif spec == "-":
            if stdin is None:
                raise ReplaySourceError("'-' needs JSON on standard input")
            sources.append(Source("<stdin>", _parse_json(stdin.read(), "<stdin>")))
        elif path.is_dir():
            files = sorted(p for p in path.glob("*.json") if p.is_file())
            if not files:
                raise ReplaySourceError(f"directory {spec} holds no *.json files")
            sources.extend(_read_file(file) for file in files)
        elif path.exists() or spec.endswith(".json") or "/" in spec or "\\" in spec:
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
    if not event.body:
        raise ReplaySourceError(
            f"{label} is a GET notification for {event.resource_id}: it has no body to re-send; "
            f"use 'tcwebhook replay --method GET' with a body holding that id"
        )
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
    return Source(str(path), _parse_json(data, str(path)))


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
