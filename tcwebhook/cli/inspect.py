"""``tcwebhook inspect``: the inspector on its own, for a store another process fills."""

from __future__ import annotations

from pathlib import Path

import typer

from tcwebhook.cli.common import ConfigOption, DataDirOption, load, run


def register(app: typer.Typer) -> None:
    app.command()(inspect)


def inspect(
    listen: str | None = typer.Option(
        None,
        "--listen",
        metavar="HOST:PORT",
        help="Address of the page.",
        show_default="127.0.0.1:4041",
    ),
    config: Path | None = ConfigOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Serve the inspector (the web page of stored events) for the configured store, alone:
    for a store that 'serve' in another process, or on another machine, fills."""
    from tcwebhook.cli.inspect_output import print_banner
    from tcwebhook.inspector.run import inspect_forever

    settings = load(config, data_dir=data_dir, inspector__listen=listen)

    def ready(url: str) -> None:
        print_banner(url, settings.store_url)

    run(inspect_forever(settings, ready))
