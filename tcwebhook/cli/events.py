"""``tcwebhook events``: read what the receiver stored."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from tcwebhook.cli.common import ConfigOption, DataDirOption, JsonOption, load

if TYPE_CHECKING:
    from tcwebhook.store import SqliteStore, StoredEvent

events_app = typer.Typer(help="List and inspect stored events.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(events_app, name="events")


def _open(config: Path | None, data_dir: Path | None) -> SqliteStore:
    from tcwebhook.store import open_store

    return open_store(load(config, data_dir=data_dir).store_url)


@events_app.command("list")
def list_events(
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="Show at most this many events."),
    kind: str | None = typer.Option(
        None,
        "--kind",
        help="order, single_delivery_order, order_documents, shipment, order_notification "
        "or shipment_notification.",
    ),
    event_name: str | None = typer.Option(
        None, "--event-name", help="Event name or glob, e.g. 'OrderLines*'."
    ),
    config: Path | None = ConfigOption,
    data_dir: Path | None = DataDirOption,
    json: bool = JsonOption,
) -> None:
    """Stored events, newest first."""
    from tcwebhook import console

    events = _open(config, data_dir).list_events(limit=limit, kind=kind, event_name=event_name)
    if json:
        console.print_json([event.summary() for event in events])
        return
    _render_list(events)


@events_app.command("show")
def show_event(
    event_id: int = typer.Argument(..., help="The event id (first column of 'events list')."),
    config: Path | None = ConfigOption,
    data_dir: Path | None = DataDirOption,
    json: bool = JsonOption,
) -> None:
    """One stored event: what it is, its changed lines, headers, tasks and body."""
    from tcwebhook import console

    event = _open(config, data_dir).get_event(event_id)
    if json:
        console.print_json(event.detail())
        return
    _render_detail(event)


def _render_list(events: list[StoredEvent]) -> None:
    from rich.table import Table

    from tcwebhook import console

    if not events:
        console.info("No events stored yet.")
        return
    table = Table(box=None, header_style="bold")
    for column in ("id", "received (UTC)", "kind", "event", "PO / shipment", "changed", "tasks"):
        table.add_column(column, justify="right" if column in ("id", "changed") else "left")
    for event in events:
        tasks = ", ".join(f"{t.target}: {t.state}" for t in event.tasks)
        table.add_row(
            str(event.id),
            event.received_at.replace("T", " ").rstrip("Z"),
            event.kind,
            event.event_name or f"GET {event.resource_id}",
            event.number or "-",
            str(len(event.changed_lines)) if event.body else "-",
            tasks or "-",
        )
    console.stdout().print(table)


def _render_detail(event: StoredEvent) -> None:
    from rich.syntax import Syntax
    from rich.table import Table

    from tcwebhook import console

    out = console.stdout()
    info = Table.grid(padding=(0, 2))
    info.add_column(style="bold")
    info.add_column()
    for label, value in (
        ("id", event.id),
        ("received", event.received_at),
        ("kind", event.kind),
        ("event", event.event_name or "-"),
        ("message id", event.message_id or "-"),
        ("Tradecloud id", event.resource_id or "-"),
        ("PO / shipment", event.number or "-"),
        ("request", f"{event.method} {event.path}"),
        ("changed lines", ", ".join(event.changed_lines) or "-"),
    ):
        info.add_row(label, str(value))
    for task in event.tasks:
        detail = f"{task.state}, {task.attempts} attempt(s)"
        if task.last_error:
            detail += f", last error: {task.last_error}"
        info.add_row(f"task {task.target}", detail)
    if event.fetched_at:
        info.add_row(
            "fetched",
            f"{event.fetched_at}; changed: {', '.join(event.fetched_changed_lines or ()) or '-'}",
        )
    out.print(info)
    if event.body:
        out.print(Syntax(_pretty(event.body), "json", word_wrap=True))


def _pretty(body: bytes) -> str:
    import orjson

    try:
        return orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace")
