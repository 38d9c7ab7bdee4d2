"""``tcwebhook samples``: list, show and write the built-in sample events."""

from __future__ import annotations

from pathlib import Path

import typer

from tcwebhook.cli.common import JsonOption

samples_app = typer.Typer(
    name="samples",
    help="Built-in sample events: one per Tradecloud event name, plus a full order and shipment.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.add_typer(samples_app)


@samples_app.command("list")
def list_samples(json_output: bool = JsonOption) -> None:
    """List every sample: name, kind and event name.

    Names are the event name in kebab-case, without '-by-buyer'/'-by-supplier' unless the other
    party has the same event; single-delivery samples start with 'single-delivery-'.
    """
    from rich.table import Table

    from tcwebhook import console, samples

    catalog = samples.catalog()
    if json_output:
        console.print_json(
            [{"name": s.name, "kind": s.kind, "eventName": s.event_name} for s in catalog]
        )
        return
    out = console.stdout()
    title = f"{len(catalog)} samples" if out.is_terminal else None
    table = Table(title=title, title_justify="left")
    table.add_column("name", style="bold", overflow="fold")
    table.add_column("kind", overflow="fold")
    table.add_column("eventName", overflow="fold")
    for sample in catalog:
        table.add_row(sample.name, sample.kind, sample.event_name or "-")
    if not out.is_terminal:
        from rich.console import Console

        # Piped output keeps whole names on one line, so that grep and cut work on it.
        out = Console(width=200, highlight=False)
    out.print(table)


@samples_app.command("show")
def show_sample(
    name: str = typer.Argument(..., help="Sample name (see 'tcwebhook samples list')."),
    json_output: bool = typer.Option(False, "--json", help="Print the raw JSON, unformatted."),
) -> None:
    """Print one sample as pretty JSON (raw with --json)."""
    import sys

    from tcwebhook import console, samples

    body = samples.get_sample(name).body
    if json_output:
        sys.stdout.write(console.to_json(body) + "\n")
        return
    sys.stdout.write(console.to_json(body, pretty=True) + "\n")


@samples_app.command("write")
def write_samples(
    directory: Path = typer.Argument(..., help="Directory to write NAME.json files into."),
    names: list[str] | None = typer.Option(
        None, "--name", "-n", help="Write only this sample (repeatable)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing files."),
    json_output: bool = JsonOption,
) -> None:
    """Write samples as NAME.json files to edit and replay."""
    from tcwebhook import console, samples

    written = samples.write_samples(directory, names or None, overwrite=overwrite)
    if json_output:
        console.print_json({"directory": str(directory), "written": [str(p) for p in written]})
        return
    console.stdout().print(f"wrote {len(written)} samples to {directory}")
