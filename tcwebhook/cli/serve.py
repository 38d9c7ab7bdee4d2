"""``tcwebhook serve``: the HTTPS receiver."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from tcwebhook.cli.common import ConfigOption, DataDirOption, Invocation


class LogFormat(StrEnum):
    """How serve writes its request lines: Rich text for people or JSON lines for machines."""

    rich = "rich"
    json = "json"


def register(app: typer.Typer) -> None:
    app.command()(serve)


def serve(
    context: typer.Context,
    config: Path | None = ConfigOption,
    host: str | None = typer.Option(
        None, "--host", help="Address to listen on.", show_default="127.0.0.1"
    ),
    port: int | None = typer.Option(None, "--port", help="Port to listen on.", show_default="8443"),
    data_dir: Path | None = DataDirOption,
    log_format: LogFormat = typer.Option(
        LogFormat.rich, "--log-format", help="One line per request: rich text or JSON lines."
    ),
    workers: int = typer.Option(
        1,
        "--workers",
        min=1,
        max=64,
        help="Processes sharing the port and the store (SO_REUSEPORT); see BENCHMARKS.md.",
    ),
    inspector: str | None = typer.Option(
        None,
        "--inspector",
        metavar="HOST:PORT",
        help="Serve the inspector (the web page of stored events) here.",
        show_default="127.0.0.1:4041",
    ),
    no_inspector: bool = typer.Option(False, "--no-inspector", help="Do not serve the inspector."),
) -> None:
    """Receive Tradecloud webhooks over HTTPS and store each event durably before answering."""
    from tcwebhook.cli.serve_process import ServeOptions, start

    options = ServeOptions(
        config=None if config is None else str(config),
        host=host,
        port=port,
        data_dir=None if data_dir is None else str(data_dir),
        json_lines=log_format is LogFormat.json,
        workers=workers,
        inspector=inspector,
        no_inspector=no_inspector,
    )
    invocation = context.obj if isinstance(context.obj, Invocation) else Invocation()
    start(options, replace_process=invocation.own_process)
