"""HTML from templates with autoescaping: every value from a payload is shown as text."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import orjson

from tcwebhook.protocol import EventKind
from tcwebhook.store import StoredEvent

TEMPLATES = Path(__file__).parent / "templates"
# Bodies larger than this are shown as plain pretty-printed text, not as a foldable tree.
TREE_LIMIT = 256 * 1024


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,  # every template, whatever its name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["scalar"] = scalar
    env.filters["clock"] = clock
    env.filters["label"] = label
    env.filters["segment"] = segment
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def render_macro(template: str, macro: str, *args: Any) -> str:
    """One macro of a template (a table row, the status block) for live updates."""
    module = environment().get_template(template).module
    return str(getattr(module, macro)(*args))


def scalar(value: Any) -> str:
    """A JSON scalar as JSON writes it (strings quoted); escaped by the template like any text."""
    return orjson.dumps(value).decode()


def label(event: StoredEvent) -> str:
    """What an event is, in a few words: its event name, else how it came."""
    if event.event_name:
        return event.event_name
    if event.kind in (EventKind.ORDER_RECOVERED, EventKind.SHIPMENT_RECOVERED):
        return "recovered by reconcile"
    if event.kind in (EventKind.ORDER_NOTIFICATION, EventKind.SHIPMENT_NOTIFICATION):
        return "GET notification"
    return event.kind


def segment(value: str) -> str:
    """``value`` as one path segment of a link: every ``/``, ``?``, ``#`` and ``%`` encoded
    (Jinja's own ``urlencode`` keeps ``/``, so a PO number like ``PO/2025/001`` broke the link)."""
    return quote(str(value), safe="")


def clock(received_at: str) -> str:
    """``2026-11-27T21:47:32.159Z`` as ``2026-11-27 21:47:32.159``."""
    return received_at.replace("T", " ").rstrip("Z")


def pretty(data: bytes) -> str:
    """Indented JSON, or the text as received when it is not JSON."""
    try:
        return orjson.dumps(orjson.loads(data), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return data.decode("utf-8", "replace")


def tree(data: bytes) -> Any:
    """The parsed JSON for the foldable view, or None (too large or not JSON)."""
    if len(data) > TREE_LIMIT:
        return None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
