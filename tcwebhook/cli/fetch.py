"""``tcwebhook fetch order|shipment|document`` and ``tcwebhook logout``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from tcwebhook.cli import fetch_output
from tcwebhook.cli.common import ConfigOption, DataDirOption, JsonOption, load, run
from tcwebhook.errors import UsageError

if TYPE_CHECKING:
    from tcwebhook.config import Settings

BaseUrlOption = typer.Option(
    None,
    "--base-url",
    help="Tradecloud API base URL, e.g. https://api.accp.tradecloud1.com/v2 "
    "(default: from tradecloud.environment).",
    show_default=False,
)
CaFileOption = typer.Option(
    None,
    "--ca-file",
    help="Extra CA certificate (PEM) to trust, e.g. a TLS-inspecting proxy's.",
    show_default=False,
)
SinceOption = typer.Option(
    None,
    "--since",
    metavar="TIMESTAMP",
    help="List the lines updated after this instant (ISO 8601, e.g. 2025-06-04T12:00:00Z).",
    show_default=False,
)
InsecureOption = typer.Option(
    False,
    "--insecure",
    help="Allow a plain http:// base URL (a local test server): the integration user's "
    "password then travels unencrypted. Prints a warning.",
)
AllOption = typer.Option(False, "--all", help="List every line, changed or not.")
RawOption = typer.Option(False, "--raw", help="Print the API response untouched.")

fetch_app = typer.Typer(
    help="Read an order, shipment or document from the Tradecloud API and show what changed.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add ``fetch`` and ``logout`` to the app."""
    app.add_typer(fetch_app, name="fetch")
    app.command("logout")(logout)


def api_settings(
    config: Path | None,
    base_url: str | None,
    ca_file: Path | None,
    data_dir: Path | None,
    insecure: bool,
) -> Settings:
    from tcwebhook import console
    from tcwebhook.errors import ConfigError

    settings = load(
        config, tradecloud__base_url=base_url, tradecloud__ca_file=ca_file, data_dir=data_dir
    )
    api = settings.tradecloud.api_base_url
    if api.lower().startswith("http://"):
        # Login sends the integration user's password: never in clear text by accident.
        if not insecure:
            raise ConfigError(
                f"the Tradecloud API base URL {api} is plain HTTP, which would send the "
                "integration user's password unencrypted: use https://, or pass --insecure "
                "for a local test server"
            )
        console.warning(f"--insecure: credentials are sent unencrypted to {api}")
    return settings


def _fetch(
    kind: str,
    object_id: str,
    since: str | None,
    all_lines: bool,
    json_output: bool,
    raw: bool,
    documents: Path | None,
    settings: Settings,
) -> None:
    from tcwebhook.changes import parse_instant
    from tcwebhook.fetch import fetch_object

    if json_output and raw:
        raise UsageError("--json and --raw cannot be combined: pick one output format")
    if since is not None and all_lines:
        raise UsageError("--since and --all cannot be combined: --all already lists every line")
    instant = None
    if since is not None:
        instant = parse_instant(since)
        if instant is None:
            raise UsageError(
                f"--since {since!r} is not a timestamp: use ISO 8601, e.g. 2025-06-04T12:00:00Z"
            )
    report = run(fetch_object(settings, kind, object_id, instant, all_lines, documents))  # type: ignore[arg-type]
    fetch_output.render(report, json_output, raw)


@fetch_app.command("order")
def order(
    order_id: str = typer.Argument(..., metavar="ID", help="Tradecloud order id."),
    since: str | None = SinceOption,
    all_lines: bool = AllOption,
    documents: Path | None = typer.Option(
        None,
        "--documents",
        metavar="DIR",
        help="Also download every document the order refers to into DIR.",
        show_default=False,
    ),
    json_output: bool = JsonOption,
    raw: bool = RawOption,
    base_url: str | None = BaseUrlOption,
    insecure: bool = InsecureOption,
    ca_file: Path | None = CaFileOption,
    config: Path | None = ConfigOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Show an order and its changed lines (default: those of its latest update)."""
    settings = api_settings(config, base_url, ca_file, data_dir, insecure)
    _fetch("order", order_id, since, all_lines, json_output, raw, documents, settings)


@fetch_app.command("shipment")
def shipment(
    shipment_id: str = typer.Argument(..., metavar="ID", help="Tradecloud shipment id."),
    since: str | None = SinceOption,
    all_lines: bool = AllOption,
    json_output: bool = JsonOption,
    raw: bool = RawOption,
    base_url: str | None = BaseUrlOption,
    insecure: bool = InsecureOption,
    ca_file: Path | None = CaFileOption,
    config: Path | None = ConfigOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Show a shipment and its changed lines, including those in load carriers."""
    settings = api_settings(config, base_url, ca_file, data_dir, insecure)
    _fetch("shipment", shipment_id, since, all_lines, json_output, raw, None, settings)


@fetch_app.command("document")
def document(
    object_id: str = typer.Argument(..., metavar="OBJECT_ID", help="The document's objectId."),
    output: Path | None = typer.Option(
        None,
        "--output",
        "-o",
        metavar="FILE",
        help="Where to save it (a file or a directory; default: its own name, here).",
        show_default=False,
    ),
    json_output: bool = JsonOption,
    base_url: str | None = BaseUrlOption,
    insecure: bool = InsecureOption,
    ca_file: Path | None = CaFileOption,
    config: Path | None = ConfigOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Download a document stored in Tradecloud (metadata, then its pre-signed URL)."""
    from tcwebhook.fetch import download_document

    settings = api_settings(config, base_url, ca_file, data_dir, insecure)
    path = run(download_document(settings, object_id, output))
    fetch_output.render_download(object_id, path, json_output)


def logout(
    base_url: str | None = BaseUrlOption,
    insecure: bool = InsecureOption,
    ca_file: Path | None = CaFileOption,
    config: Path | None = ConfigOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """End the cached Tradecloud API session and delete its tokens."""
    from tcwebhook.fetch import logout as end_session

    settings = api_settings(config, base_url, ca_file, data_dir, insecure)
    result = run(end_session(settings))
    fetch_output.render_logout(result, settings.tradecloud.api_base_url)
