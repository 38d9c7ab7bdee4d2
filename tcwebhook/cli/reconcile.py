"""``tcwebhook reconcile``: poll Tradecloud and store the changes no webhook delivered."""

from __future__ import annotations

from pathlib import Path

import typer

from tcwebhook.cli.common import ConfigOption, DataDirOption, JsonOption, run
from tcwebhook.cli.fetch import BaseUrlOption, CaFileOption, InsecureOption, api_settings
from tcwebhook.errors import EXIT_CHECK_FAILED


def register(app: typer.Typer) -> None:
    app.command()(reconcile)


def reconcile(
    since: str | None = typer.Option(
        None,
        "--since",
        metavar="TIME",
        help="Poll changes after this instant (ISO 8601, e.g. 2025-06-01T00:00:00Z) or this "
        "long ago (90m, 12h, 7d). Default: continue from the last run's cursor.",
        show_default=False,
    ),
    until: str | None = typer.Option(
        None,
        "--until",
        metavar="TIME",
        help="Leave out changes after this instant (filtered here: the API has no such filter); "
        "the cursor stays where it was.",
        show_default=False,
    ),
    orders: bool | None = typer.Option(
        None, "--orders/--no-orders", help="Poll orders.", show_default="reconcile.orders"
    ),
    shipments: bool | None = typer.Option(
        None,
        "--shipments/--no-shipments",
        help="Poll shipments.",
        show_default="reconcile.shipments",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Store nothing and move no cursor; list what would be recovered."
    ),
    check: bool = typer.Option(
        False, "--check", help="Exit 1 when anything was missing (for monitoring)."
    ),
    json_output: bool = JsonOption,
    base_url: str | None = BaseUrlOption,
    ca_file: Path | None = CaFileOption,
    config: Path | None = ConfigOption,
    data_dir: Path | None = DataDirOption,
    insecure: bool = InsecureOption,
) -> None:
    """Find the order and shipment changes Tradecloud never delivered, and store them as
    recovered events (kinds order_recovered, shipment_recovered) for the sinks."""
    from tcwebhook import console
    from tcwebhook.cli.reconcile_output import progress_bar, render
    from tcwebhook.instants import moment_option
    from tcwebhook.reconcile import reconcile_configured_store

    settings = api_settings(config, base_url, ca_file, data_dir, insecure)
    start = moment_option("--since", since) if since is not None else None
    end = moment_option("--until", until) if until is not None else None
    bar = not json_output and console.stderr().is_terminal
    with progress_bar(console.stderr(), bar) as progress:
        report = run(
            reconcile_configured_store(
                settings,
                since=start,
                until=end,
                orders=orders,
                shipments=shipments,
                dry_run=dry_run,
                progress=progress,
            )
        )
    if json_output:
        console.print_json(report.to_json())
    else:
        render(report, console.stdout())
    if report.error is not None:
        console.error(report.error)
        raise typer.Exit(report.error_exit_code)
    if check and report.recovered:
        raise typer.Exit(EXIT_CHECK_FAILED)
