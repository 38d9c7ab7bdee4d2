"""What ``tcwebhook events`` prints: the event table, one event's detail, JSON lines, counts."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from tcwebhook.delivery.status import Blocker
    from tcwebhook.store import StoredEvent


def print_requeued(count: int, why_none: str | None = None) -> None:
    from tcwebhook import console

    if count == 0 and why_none:
        console.info(f"0 delivery(ies) re-queued: {console.safe_text(why_none, None).plain}")
        return
    console.info(f"{count} delivery(ies) re-queued; a running serve or deliver picks them up")


def print_purged(count: int) -> None:
    from tcwebhook import console

    console.info(f"{count} event(s) deleted")


def write_envelopes(events: Iterable[StoredEvent]) -> None:
    """One JSON envelope per line (our metadata, the Tradecloud body, changed lines)."""
    from tcwebhook.console import to_json
    from tcwebhook.delivery.content import envelope

    for event in events:
        sys.stdout.write(to_json(envelope(event)) + "\n")


LIST_LIMIT = 60  # characters of a payload value in a table cell


def render_list(events: list[StoredEvent], json: bool) -> None:
    """A table of events (or their summaries as JSON)."""
    from rich.table import Table

    from tcwebhook import console

    if json:
        console.print_json([event.summary() for event in events])
        return
    if not events:
        console.info("No events stored yet.")
        return
    table = Table(box=None, header_style="bold")
    for column in ("id", "received (UTC)", "kind", "event", "PO / shipment", "changed", "tasks"):
        table.add_column(column, justify="right" if column in ("id", "changed") else "left")
    safe = console.safe_text
    for event in events:
        tasks = ", ".join(f"{t.target}: {t.state}" for t in event.tasks)
        table.add_row(
            str(event.id),
            safe(event.received_at.replace("T", " ").rstrip("Z")),
            safe(event.kind),
            safe(event_label(event), LIST_LIMIT),
            safe(event.number or "-", LIST_LIMIT),
            str(len(event.changed_lines)) if event.body else "-",
            safe(tasks or "-"),
        )
    console.stdout().print(table)


def event_label(event: StoredEvent) -> str:
    """The event name; for the kinds without one, what they are: ``GET <id>`` for a GET
    notification, ``RECOVERED <id>`` for a change that reconcile found by polling."""
    if event.event_name:
        return event.event_name
    if event.kind.endswith("_recovered"):
        return f"RECOVERED {event.resource_id or '-'}"
    return f"{event.method} {event.resource_id or '-'}"


def _request(event: StoredEvent) -> str:
    if event.kind.endswith("_recovered"):
        return f"none: recovered by reconcile from the poll {event.path}"
    return f"{event.method} {event.path}"


def render_detail(
    event: StoredEvent, json: bool, held_back: Mapping[str, Blocker] | None = None
) -> None:
    """Everything about one event (or its detail as JSON); ``held_back``: per sink, the earlier
    event its delivery waits behind."""
    from rich.syntax import Syntax
    from rich.table import Table

    from tcwebhook import console

    held_back = held_back or {}
    if json:
        as_json = event.detail()
        as_json["held_back_by"] = {
            target: blocker.as_dict() for target, blocker in sorted(held_back.items())
        }
        console.print_json(as_json)
        return
    out = console.stdout()
    info = Table.grid(padding=(0, 2))
    info.add_column(style="bold")
    info.add_column()
    for label, value in (
        ("id", event.id),
        ("received", event.received_at),
        ("kind", event.kind),
        ("event", event_label(event)),
        ("message id", event.message_id or "-"),
        ("Tradecloud id", event.resource_id or "-"),
        ("PO / shipment", event.number or "-"),
        ("request", _request(event)),
        ("changed lines", ", ".join(event.changed_lines) or "-"),
    ):
        info.add_row(label, console.safe_text(value))
    for task in event.tasks:
        detail = f"{task.state}, {task.attempts} attempt(s)"
        if task.last_error:
            detail += f", last error: {task.last_error}"
        if task.target in held_back:
            detail += f"; {held_back[task.target].describe()}"
        info.add_row(f"task {console.safe_text(task.target)}", console.safe_text(detail, 1000))
    if event.fetched_at:
        changed = ", ".join(event.fetched_changed_lines or ()) or "-"
        info.add_row("fetched", console.safe_text(f"{event.fetched_at}; changed: {changed}"))
    out.print(info)
    if event.body:
        pretty = _pretty(event.body)
        if pretty is None:  # not JSON: shown as text, escaped
            out.print(console.safe_text(event.body.decode("utf-8", "replace"), None, keep="\n\t"))
        else:
            out.print(Syntax(pretty, "json", word_wrap=True))


def _pretty(body: bytes) -> str | None:
    """The body indented, or None if it is not JSON. JSON strings are escaped by the serialiser,
    so no control character reaches the terminal; a body nested deeper than it can indent is
    shown as stored."""
    import orjson

    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONEncodeError:
        return body.decode()
