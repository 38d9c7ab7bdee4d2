"""``tcwebhook events``: read what the receiver stored."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from tcwebhook.cli import events_output
from tcwebhook.cli.common import ConfigOption, DataDirOption, JsonOption, open_existing_store
from tcwebhook.errors import UsageError
from tcwebhook.protocol import EventKind
from tcwebhook.store.records import TaskState


class ExportFormat(StrEnum):
    """The formats 'events export' writes: JSON lines, one envelope per event."""

    jsonl = "jsonl"


events_app = typer.Typer(help="List and inspect stored events.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(events_app, name="events")


@events_app.command("list")
def list_events(
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="Show at most this many events."),
    kind: EventKind | None = typer.Option(None, "--kind", help="Only events of this kind."),
    event_name: str | None = typer.Option(
        None, "--event-name", help="Event name or glob, e.g. 'OrderLines*'."
    ),
    state: TaskState | None = typer.Option(
        None, "--state", help="Only events with a delivery in this state."
    ),
    config: Path | None = ConfigOption,
    data_dir: Path | None = DataDirOption,
    json: bool = JsonOption,
) -> None:
    """Stored events, newest first, with the state of each delivery."""
    store = open_existing_store(config, data_dir)
    events = store.list_events(
        limit=limit,
        kind=kind.value if kind else None,
        event_name=event_name,
        task_state=state.value if state else None,
    )
    events_output.render_list(events, json)


@events_app.command("show")
def show_event(
    event_id: int = typer.Argument(..., help="The event id (first column of 'events list')."),
    config: Path | None = ConfigOption,
    data_dir: Path | None = DataDirOption,
    json: bool = JsonOption,
) -> None:
    """One stored event: what it is, its changed lines, headers, tasks and body; for a delivery
    held back by an earlier event, which one and why."""
    from tcwebhook.cli.deliver import ordered_sinks
    from tcwebhook.delivery.status import held_back_by

    store = open_existing_store(config, data_dir)
    event = store.get_event(event_id)
    held_back = held_back_by(store, event, ordered_sinks(config, data_dir))
    events_output.render_detail(event, json, held_back)


@events_app.command("retry")
def retry(
    event_id: int | None = typer.Argument(None, help="Re-queue every delivery of this event."),
    dead: bool = typer.Option(False, "--dead", help="Re-queue every dead delivery instead."),
    sink: str | None = typer.Option(None, "--sink", help="Only deliveries to this sink."),
    config: Path | None = ConfigOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Deliver again: one event's deliveries, or all dead ones (after fixing the sink)."""
    from tcwebhook.delivery.requeue import nothing_to_requeue, requeue_deliveries

    if (event_id is None) == (not dead):
        raise UsageError("give either an event id or --dead (not both)")
    store = open_existing_store(config, data_dir, read_only=False)
    count = requeue_deliveries(store, event_id, sink, dead_only=dead)
    why = None
    if count == 0 and event_id is not None:
        why = nothing_to_requeue(store.get_event(event_id), sink)
    events_output.print_requeued(count, why)


@events_app.command(
    "replay",
    context_settings={
        "allow_extra_args": True,
        "ignore_unknown_options": True,
        "help_option_names": [],  # --help shows the options of 'tcwebhook replay' (below)
    },
)
def replay_event(
    context: typer.Context,
    event_id: str | None = typer.Argument(None, help="The stored event to send again."),
) -> None:
    """Re-send a stored event as Tradecloud sends it; takes every option of 'tcwebhook replay'
    (e.g. --url URL --token T --retry)."""
    app = context.find_root().command  # the whole tcwebhook command, as typer built it

    if event_id is None or {event_id, *context.args} & {"--help", "-h"}:
        typer.echo(
            "Usage: tcwebhook events replay ID [OPTIONS]\n\n"
            "Re-send stored event ID. The options are those of 'tcwebhook replay', whose SOURCE "
            "is event:ID here:\n"
        )
        app(args=["replay", "--help"], prog_name="tcwebhook")
        return
    if not event_id.isdigit():
        raise UsageError(f"events replay: {event_id!r} is not an event id (e.g. 42)")
    # The same command line as 'tcwebhook replay event:ID ...': one implementation, every option.
    app(args=["replay", f"event:{event_id}", *context.args], prog_name="tcwebhook")


@events_app.command("export")
def export(
    since: str | None = typer.Option(
        None,
        "--since",
        metavar="TIME",
        help="Only events received at or after this instant (ISO 8601 in UTC, e.g. 2026-11-01 "
        "or 2026-11-01T12:00:00Z) or this long ago (90m, 12h, 7d).",
    ),
    output_format: ExportFormat = typer.Option(
        ExportFormat.jsonl, "--format", help="jsonl (one envelope per line)."
    ),
    config: Path | None = ConfigOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Stream stored events as JSON lines (our metadata, the Tradecloud body, changed lines)."""
    start = _timestamp(since, "--since") if since else None
    store = open_existing_store(config, data_dir)
    events_output.write_envelopes(store.iter_events(start))


@events_app.command("purge")
def purge(
    before: str = typer.Option(
        ...,
        "--before",
        metavar="TIME",
        help="Delete events received before this instant (ISO 8601 in UTC, e.g. 2026-10-01) or "
        "this long ago (e.g. 30d).",
    ),
    force: bool = typer.Option(False, "--force", help="Also delete events not yet delivered."),
    config: Path | None = ConfigOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Delete old events whose deliveries are all done (undelivered ones only with --force)."""
    store = open_existing_store(config, data_dir, read_only=False)
    count = store.purge(_timestamp(before, "--before"), force=force)
    events_output.print_purged(count)


def _timestamp(value: str, option: str) -> str:
    """A user's instant or time ago as the store's UTC text form (what received_at looks like)."""
    from tcwebhook.instants import moment_option

    instant = moment_option(option, value)
    return instant.isoformat(timespec="milliseconds").replace("+00:00", "Z")
