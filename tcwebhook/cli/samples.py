"""``tcwebhook samples``: list, show and write the built-in sample events."""

from __future__ import annotations

from pathlib import Path

import typer

from tcwebhook.cli import samples_output
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
    from tcwebhook import samples

    samples_output.render_catalog(samples.catalog(), json_output)


@samples_app.command("show")
def show_sample(
    name: str = typer.Argument(..., help="Sample name (see 'tcwebhook samples list')."),
    json_output: bool = typer.Option(False, "--json", help="Print the raw JSON, unformatted."),
    xml: bool = typer.Option(
        False, "--xml", help="Print it as tXML, as the order webhook sends it when set to tXML."
    ),
) -> None:
    """Print one sample as pretty JSON (raw with --json, tXML with --xml)."""
    from tcwebhook import samples

    body = samples.get_sample(name).body
    if xml:
        samples_output.print_xml(name, body)
    else:
        samples_output.print_body(body, json_output)


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
    from tcwebhook import samples

    written = samples.write_samples(directory, names or None, overwrite=overwrite)
    samples_output.render_written(directory, written, json_output)
