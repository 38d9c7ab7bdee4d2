"""``tcwebhook serve``: the HTTPS receiver."""

from __future__ import annotations

import socket
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from tcwebhook.cli.common import ConfigOption, DataDirOption, load, run
from tcwebhook.cli.deliver import print_delivery

if TYPE_CHECKING:
    from tcwebhook.config import Settings
    from tcwebhook.delivery.sinks import TaskPolicy
    from tcwebhook.server.app import RequestLog
    from tcwebhook.server.run import ExtraListener, ServePlan
    from tcwebhook.store import TaskRecord


ERROR_LIMIT = 400  # characters of an error in a request line


class LogFormat(StrEnum):
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
    from tcwebhook.server.run import plan, serve_processes, tune_process
    from tcwebhook.server.run import serve as serve_forever
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
        _print_banner(serve_plan, bound_port, json_lines, inspector_state)

    def stopping() -> None:
        _print_stopping(json_lines)

    tune_process()
    request_logger = _json_line if json_lines else _text_line
    delivery_listener = _json_delivery if json_lines else print_delivery
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


# ----------------------------------------------------------------------------------------------
# Rendering. Everything serve logs goes to stdout (banner, request and delivery lines, the stop
# line); stderr is for errors and warnings. Request lines bypass Rich: they are written at full
# request rate.


def _print_banner(
    serve_plan: ServePlan, port: int, json_lines: bool, inspector: dict[str, str | None]
) -> None:
    from rich.markup import escape

    from tcwebhook import console
    from tcwebhook.store.base import display_url

    store = display_url(serve_plan.settings.store_url)  # never the password
    paths = serve_plan.settings.server.paths
    order_url, shipment_url = (
        serve_plan.url(paths.order, port),
        serve_plan.url(paths.shipment, port),
    )
    if json_lines:
        console.print_json_line(
            {"listening": True, "order_url": order_url, "shipment_url": shipment_url,
             "ca_file": serve_plan.dev_ca, "store": store,
             "inspector_url": inspector.get("url")}
        )  # fmt: skip
        return
    out = console.stdout()
    out.print(f"[bold green]tcwebhook[/] listening on port {port} (TLS 1.2/1.3)", soft_wrap=True)
    out.print(f"  order webhooks:    {order_url}", soft_wrap=True)
    out.print(f"  shipment webhooks: {shipment_url}", soft_wrap=True)
    out.print(f"  events stored in:  {escape(store)}", soft_wrap=True)
    if inspector.get("url"):
        out.print(f"  inspector:         {inspector['url']} (open it in a browser)", soft_wrap=True)
    elif inspector.get("problem"):
        out.print(
            f"  inspector:         not started: {inspector['problem']}",
            style="yellow",
            markup=False,
            soft_wrap=True,
        )
    if serve_plan.dev_ca is not None:
        out.print(
            f"  development CA:    {serve_plan.dev_ca} (trust it in local clients)", soft_wrap=True
        )
    if serve_plan.dev_token_file is not None:
        out.print(
            f"  bearer token:      generated, in {serve_plan.dev_token_file} (mode 0600)",
            soft_wrap=True,
        )
    out.print("Try it:", style="bold", soft_wrap=True)
    out.print(_curl_line(serve_plan, order_url), soft_wrap=True, markup=False, highlight=False)
    out.print(
        "  (no order-event.json at hand? tcwebhook samples show order-issued --json > "
        "order-event.json, or simply: tcwebhook replay order-issued)",
        style="dim",
        markup=False,
        soft_wrap=True,
    )
    out.print("Stop with Ctrl-C.", style="dim", soft_wrap=True)


def _print_stopping(json_lines: bool) -> None:
    from tcwebhook import console

    message = "stopping: finishing the requests and deliveries under way"
    if json_lines:
        console.print_json_line({"stopping": True, "message": message})
    else:
        console.stdout().print(message, style="dim", markup=False, highlight=False)


def _curl_line(serve_plan: ServePlan, url: str) -> str:
    """A ready-to-paste curl command that never contains the secret itself."""
    from tcwebhook.local import curl_authorization

    header = curl_authorization(serve_plan.settings)
    cacert = f"--cacert {serve_plan.dev_ca} " if serve_plan.dev_ca else ""
    return (
        f"curl {cacert}{header} -H 'Content-Type: application/json' "
        f"--data-binary @order-event.json {url}"
    )


def _text_line(entry: RequestLog) -> None:
    from tcwebhook.console import printable

    colour = sys.stdout.isatty()
    status = f"{entry.status}"
    if colour:
        code = "32" if entry.status < 300 else "33" if entry.status < 500 else "31"
        status = f"\x1b[{code}m{status}\x1b[0m"
    clock = entry.time[11:23]
    error = printable(entry.error, ERROR_LIMIT) if entry.error else ""  # may quote the client
    if entry.kind is None:
        line = f"{clock}  {status}  {entry.method} {printable(entry.path)}  {error}"
        if entry.client:
            line += f"  from {printable(entry.client)}"
    else:
        what = entry.event_name or f"GET notification {entry.resource_id}"
        parts = [clock, status, entry.kind, printable(what), printable(entry.number or "-")]
        if entry.changed_lines is not None:
            parts.append(
                f"{entry.changed_lines} line{'s' if entry.changed_lines != 1 else ''} changed"
            )
        if entry.duplicate:
            parts.append(f"duplicate of #{entry.event_id}")
        elif entry.event_id is not None:
            parts.append(f"#{entry.event_id}")
        if entry.unknown_event:
            parts.append("(unknown event name: stored anyway)")
        if error:
            parts.append(error)
        if entry.client:
            parts.append(f"from {printable(entry.client)}")
        line = "  ".join(parts)
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _json_line(entry: RequestLog) -> None:
    import orjson

    # orjson encodes the dataclass itself (dataclasses.asdict deep-copies every field), straight
    # to bytes with the newline: the fields are plain str/int/float/bool/None, so the line is the
    # same as console.print_json_line's, without its text round trip. Every other line on stdout
    # is flushed as it is written, so nothing is pending in the text layer.
    # docs/performance-notes.md#12-a-cheaper-request-log-line-and-timestamp
    stdout = getattr(sys.stdout, "buffer", None)
    if stdout is None:  # a text-only stream stands in for stdout (an embedding tool)
        from tcwebhook import console

        console.print_json_line(entry)
        return
    stdout.write(orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE))
    stdout.flush()


def _json_delivery(policy: TaskPolicy, task: TaskRecord, state: str, error: str | None) -> None:
    from tcwebhook import console

    console.print_json_line(
        {"delivery": policy.name, "event_id": task.event_id, "state": state, "error": error}
    )
