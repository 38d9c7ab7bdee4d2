"""``tcwebhook events``: read what the receiver stored."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from tcwebhook.cli.common import ConfigOption, DataDirOption, JsonOption, load

if TYPE_CHECKING:
    from tcwebhook.store import Store, StoredEvent

events_app = typer.Typer(help="List and inspect stored events.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(events_app, name="events")


def _open(config: Path | None, data_dir: Path | None) -> Store:
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
    state: str | None = typer.Option(
        None,
        "--state",
        help="Only events with a delivery in this state: pending, running, failed, dead or done.",
    ),
    config: Path | None = ConfigOption,
    data_dir: Path | None = DataDirOption,
    json: bool = JsonOption,
) -> None:
    """Stored events, newest first, with the state of each delivery."""
    from tcwebhook import console

    store = _open(config, data_dir)
    events = store.list_events(limit=limit, kind=kind, event_name=event_name, task_state=state)
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


@events_app.command("retry")
def retry(
    event_id: int | None = typer.Argument(None, help="Re-queue every delivery of this event."),
    dead: bool = typer.Option(False, "--dead", help="Re-queue every dead delivery instead."),
    sink: str | None = typer.Option(None, "--sink", help="Only deliveries to this sink."),
    config: Path | None = ConfigOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Deliver again: one event's deliveries, or all dead ones (after fixing the sink)."""
    from tcwebhook import console
    from tcwebhook.errors import ConfigError

    if (event_id is None) == (not dead):
        raise ConfigError("give either an event id or --dead (not both)")
    store = _open(config, data_dir)
    if event_id is not None:
        store.get_event(event_id)  # a clear "no event with id N" rather than "0 re-queued"
    count = store.requeue_tasks(event_id=event_id, target=sink, dead_only=dead)
    console.info(f"{count} delivery(ies) re-queued; a running serve or deliver picks them up")


@events_app.command(
    "replay",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def replay_event(
    context: typer.Context,
    event_id: int = typer.Argument(..., help="The stored event to send again."),
) -> None:
    """Re-send a stored event's original bytes; takes every option of 'tcwebhook replay'
    (e.g. --url URL --token T --retry)."""
    from tcwebhook.cli import app

    # The same command line as 'tcwebhook replay event:ID ...': one implementation, every option.
    app(args=["replay", f"event:{event_id}", *context.args], prog_name="tcwebhook")


@events_app.command("export")
def export(
    since: str | None = typer.Option(
        None,
        "--since",
        help="Only events received at or after "
        "this UTC time, e.g. 2026-11-01 or 2026-11-01T12:00:00Z.",
    ),
    output_format: str = typer.Option("jsonl", "--format", help="jsonl (one envelope per line)."),
    config: Path | None = ConfigOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Stream stored events as JSON lines (our metadata, the Tradecloud body, changed lines)."""
    import sys

    from tcwebhook.console import to_json
    from tcwebhook.delivery.content import envelope
    from tcwebhook.errors import ConfigError

    if output_format != "jsonl":
        raise ConfigError(f"--format {output_format} is not supported; use jsonl")
    store = _open(config, data_dir)
    for event in store.iter_events(_timestamp(since, "--since") if since else None):
        sys.stdout.write(to_json(envelope(event)) + "\n")


@events_app.command("purge")
def purge(
    before: str = typer.Option(
        ..., "--before", help="Delete events received before this UTC time (e.g. 2026-10-01)."
    ),
    force: bool = typer.Option(False, "--force", help="Also delete events not yet delivered."),
    config: Path | None = ConfigOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Delete old events whose deliveries are all done (undelivered ones only with --force)."""
    from tcwebhook import console

    count = _open(config, data_dir).purge(_timestamp(before, "--before"), force=force)
    console.info(f"{count} event(s) deleted")


def _timestamp(value: str, option: str) -> str:
    """A user's date or date-time as the store's UTC text form (what received_at looks like)."""
    from tcwebhook.changes import parse_instant
    from tcwebhook.errors import ConfigError

    instant = parse_instant(value if "T" in value else value + "T00:00:00Z")
    if instant is None:
        raise ConfigError(
            f"{option} {value!r} is not a date or date-time (e.g. 2026-11-01T12:00:00Z)"
        )
    return instant.isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
