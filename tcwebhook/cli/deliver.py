"""``tcwebhook deliver`` (the outbox worker on its own) and ``tcwebhook status`` (monitoring)."""

from __future__ import annotations

from pathlib import Path

import typer

from tcwebhook.cli import deliver_output
from tcwebhook.cli.common import (
    STORE_SECTIONS,
    ConfigOption,
    DataDirOption,
    JsonOption,
    load,
    open_existing_store,
    run,
)
from tcwebhook.errors import EXIT_CHECK_FAILED


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
        attempts = run(run_worker(store, settings, deliver_output.print_delivery, once=once))
    finally:
        store.close()
    if once:
        from tcwebhook import console

        console.info(f"{attempts} delivery attempt(s) made")


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
    report = outbox_status(store, max_pending_age, max_failing_age, ordered_sinks(config, data_dir))
    if json:
        console.print_json(report)
    else:
        deliver_output.render_status(report)
    if not report["healthy"]:
        raise typer.Exit(EXIT_CHECK_FAILED)


def ordered_sinks(config: Path | None, data_dir: Path | None) -> frozenset[str] | None:
    """The ``concurrency: 1`` sinks of the configuration (an earlier event can hold them back);
    None when the sinks cannot be read: every sink then counts, the report is still made."""
    from tcwebhook.errors import ConfigError

    try:
        settings = load(config, sections=(*STORE_SECTIONS, "sinks"), data_dir=data_dir)
    except ConfigError:
        return None
    return frozenset(sink.name for sink in settings.sinks if sink.concurrency == 1)
