"""``tcwebhook serve``: the HTTPS receiver."""

from __future__ import annotations

import socket
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from tcwebhook.cli import serve_output
from tcwebhook.cli.common import ConfigOption, DataDirOption, load, run
from tcwebhook.cli.deliver_output import print_delivery

if TYPE_CHECKING:
    from tcwebhook.config import Settings
    from tcwebhook.server.plan import ServePlan
    from tcwebhook.server.run import ExtraListener


class LogFormat(StrEnum):
    """How serve writes its request lines: Rich text for people or JSON lines for machines."""

    rich = "rich"
    json = "json"


def register(app: typer.Typer) -> None:
    app.command()(serve)


def serve(
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
    from tcwebhook.server.plan import plan
    from tcwebhook.server.run import serve as serve_forever
    from tcwebhook.server.run import serve_processes, tune_process
    from tcwebhook.server.systemd import activated_sockets

    def load_settings() -> Settings:
        return load(
            config,
            server__host=host,
            server__port=port,
            data_dir=data_dir,
            inspector__listen=inspector,
            inspector__enabled=False if no_inspector else None,
        )

    settings = load_settings()
    activated = activated_sockets()
    if activated:  # socket activation: the safety checks and the banner see the real address
        settings = _listening_on(settings, activated[0])
    serve_plan = plan(settings).with_loader(load_settings)
    json_lines = log_format is LogFormat.json
    _log_to_stderr()
    inspector_state: dict[str, str | None] = {}
    listeners = _inspector_listener(serve_plan, inspector_state)

    def ready(bound_port: int) -> None:
        serve_output.print_banner(serve_plan, bound_port, json_lines, inspector_state)

    def stopping() -> None:
        serve_output.print_stopping(json_lines)

    tune_process()
    request_logger = serve_output.json_line if json_lines else serve_output.text_line
    delivery_listener = serve_output.json_delivery if json_lines else print_delivery
    from tcwebhook.cli.reconcile_output import json_log_line, log_line

    reconcile_listener = json_log_line if json_lines else log_line
    if workers > 1:
        serve_processes(
            serve_plan,
            workers,
            request_logger=request_logger,
            delivery_listener=delivery_listener,
            on_ready=ready,
            inherited=activated[0] if activated else None,
            reconcile_listener=reconcile_listener,
            extra_listeners=listeners,
            on_stopping=stopping,
        )
        return
    run(
        serve_forever(
            serve_plan,
            request_logger=request_logger,
            delivery_listener=delivery_listener,
            on_ready=ready,
            sock=activated[0] if activated else None,
            reconcile_listener=reconcile_listener,
            extra_listeners=listeners,
            on_stopping=stopping,
        )
    )


def _listening_on(settings: Settings, sock: socket.socket) -> Settings:
    import dataclasses

    if sock.family == socket.AF_UNIX:
        server = dataclasses.replace(settings.server, unix_socket=Path(sock.getsockname()))
    else:
        host, bound_port = sock.getsockname()[:2]
        server = dataclasses.replace(settings.server, host=host, port=bound_port)
    return dataclasses.replace(settings, server=server)


def _log_to_stderr() -> None:
    """Operational messages (reloads, key refreshes) as plain lines on stderr."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("tcwebhook: %(message)s"))
    for name in ("tcwebhook.reload", "tcwebhook.auth"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False  # not also through the root handler of the network edge


def _inspector_listener(serve_plan: ServePlan, state: dict[str, str | None]) -> list[ExtraListener]:
    """The inspector beside the receiver, checked now (a refused address stops serve before
    it binds); ``state`` receives its URL or why it could not start, for the banner."""
    from tcwebhook.inspector import run as inspector

    if not serve_plan.settings.inspector.enabled:
        return []
    inspector.check(serve_plan.settings)

    def started(url: str | None, problem: str | None) -> None:
        state.update(url=url, problem=problem)

    return [inspector.beside_serve(started)]
