"""``tcwebhook deliver`` (the outbox worker on its own) and ``tcwebhook status`` (monitoring)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from tcwebhook.cli.common import (
    ConfigOption,
    DataDirOption,
    JsonOption,
    load,
    open_existing_store,
    run,
)
from tcwebhook.errors import EXIT_CHECK_FAILED

if TYPE_CHECKING:
    from tcwebhook.delivery.sinks import TaskPolicy
    from tcwebhook.store import TaskRecord


def register(app: typer.Typer) -> None:
    app.command()(deliver)
    app.command()(status)


def deliver(
    once: bool = typer.Option(False, "--once", help="Deliver what is due now, then exit (cron)."),
    config: Path | None = ConfigOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Hand stored events on to the configured sinks (and fetch GET notifications)."""
    from tcwebhook.delivery.worker import run_worker
    from tcwebhook.store import open_store

    settings = load(config, data_dir=data_dir)
    store = open_store(settings.store_url)
    try:
        attempts = run(run_worker(store, settings, print_delivery, once=once))
    finally:
        store.close()
    if once:
        from tcwebhook import console

        console.info(f"{attempts} delivery attempt(s) made")


def print_delivery(policy: TaskPolicy, task: TaskRecord, state: str, error: str | None) -> None:
    """One line per delivery attempt (never a secret: errors are written without them)."""
    line = f"{datetime.now(UTC):%H:%M:%S}  event #{task.event_id} → {policy.name}: {state}"
    if error:
        line += f" ({error})"
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def status(
    max_pending_age: float = typer.Option(
        3600, "--max-pending-age", help="Exit 1 when a delivery has waited longer (seconds)."
    ),
    max_failing_age: float = typer.Option(
        300,
        "--max-failing-age",
        help="Exit 1 when a sink's oldest undelivered event has failed and waited longer "
        "(seconds).",
    ),
    config: Path | None = ConfigOption,
    data_dir: Path | None = DataDirOption,
    json: bool = JsonOption,
) -> None:
    """Counts per kind and delivery state; exit 1 when anything is dead, keeps failing or waits
    too long, or the store cannot take events."""
    from tcwebhook import console
    from tcwebhook.delivery.status import outbox_status

    store = open_existing_store(config, data_dir)
    report = outbox_status(store, max_pending_age, max_failing_age)
    if json:
        console.print_json(report)
    else:
        _render_status(report)
    if not report["healthy"]:
        raise typer.Exit(EXIT_CHECK_FAILED)


_STATES = ("pending", "running", "failed", "dead", "done")


def _render_status(report: dict[str, Any]) -> None:
    from rich.table import Table

    from tcwebhook import console

    out = console.stdout()
    events = report["events"]
    out.print(f"[bold]{sum(events.values())}[/] events stored")
    for kind, count in sorted(events.items()):
        out.print(f"  {kind}: {count}")
    if report["deliveries"]:
        table = Table(box=None, header_style="bold")
        table.add_column("target")
        for state in _STATES:
            table.add_column(state, justify="right")
        for target, states in sorted(report["deliveries"].items()):
            table.add_row(target, *(str(states.get(state, 0)) for state in _STATES))
        out.print(table)
    age = report["oldest_unfinished_age_seconds"]
    if age is not None:
        out.print(f"oldest unfinished delivery waits for {age:.0f} s")
    for problem in report["problems"]:
        console.warning(console.safe_text(problem, None).plain)
    out.print("[green]healthy[/]" if report["healthy"] else "[red]unhealthy[/]")
