"""``tcwebhook serve`` once its options are parsed, in a process that loads only the receiver.

The command line (typer, and through it pydantic, click and every command's module) cost a
receiver about 13 MB of resident memory that it never used again, a sixth of what it may hold
under load (BENCHMARKS.md). So when the process is the command's own, ``serve`` parses its
options and then replaces the process image with ``python -m tcwebhook.cli.serve_process
OPTIONS`` (``execv``: the same PID, open files, environment and working directory, which is
what systemd, socket activation and pid files expect). Everything from loading the
configuration on happens here, with the command's one-line errors and exit codes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from tcwebhook.cli.exits import one_line_errors

if TYPE_CHECKING:
    from tcwebhook.config import Settings
    from tcwebhook.server.plan import ServePlan
    from tcwebhook.server.run import ExtraListener


@dataclass(frozen=True)
class ServeOptions:
    """What ``serve`` was given on its command line (None: not given)."""

    config: str | None = None
    host: str | None = None
    port: int | None = None
    data_dir: str | None = None
    json_lines: bool = False
    workers: int = 1
    inspector: str | None = None
    no_inspector: bool = False


def start(options: ServeOptions, *, replace_process: bool) -> None:
    """Serve until stopped: in a process of its own when allowed, else in this one."""
    # A frozen build (PyInstaller and the like) has no interpreter to start with -m.
    if replace_process and sys.executable and not getattr(sys, "frozen", False):
        _replace_process(options)  # returns only if the interpreter cannot be started
    serve(options)


def _replace_process(options: ServeOptions) -> None:
    flags: list[str] = getattr(subprocess, "_args_from_interpreter_flags", list)()  # -X, -I …
    argv = [sys.executable, *flags, "-m", __name__, json.dumps(dataclasses.asdict(options))]
    sys.stdout.flush()
    sys.stderr.flush()
    # No interpreter to start: serve in this process, with what it has loaded.
    with contextlib.suppress(OSError):
        os.execv(sys.executable, argv)


def main() -> NoReturn:
    """``python -m tcwebhook.cli.serve_process OPTIONS``, as ``serve`` starts it."""
    with one_line_errors():
        serve(ServeOptions(**json.loads(sys.argv[1])))
    sys.exit(0)


def serve(options: ServeOptions) -> None:
    """Load the settings, bind, print the banner and serve until a signal stops it."""
    from tcwebhook.cli import serve_output
    from tcwebhook.cli.deliver_output import print_delivery
    from tcwebhook.cli.reconcile_output import json_log_line, log_line
    from tcwebhook.config import load_settings
    from tcwebhook.server.plan import plan
    from tcwebhook.server.run import serve as serve_forever
    from tcwebhook.server.run import serve_processes, tune_process
    from tcwebhook.server.systemd import activated_sockets

    flags = {
        "server.host": options.host,
        "server.port": options.port,
        "data_dir": None if options.data_dir is None else Path(options.data_dir),
        "inspector.listen": options.inspector,
        "inspector.enabled": False if options.no_inspector else None,
    }
    config = None if options.config is None else Path(options.config)

    def load() -> Settings:
        return load_settings(config, flags)

    settings = load()
    activated = activated_sockets()
    if activated:  # socket activation: the safety checks and the banner see the real address
        settings = _listening_on(settings, activated[0])
    serve_plan = plan(settings).with_loader(load)
    json_lines = options.json_lines
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
    reconcile_listener = json_log_line if json_lines else log_line
    if options.workers > 1:
        serve_processes(
            serve_plan,
            options.workers,
            request_logger=request_logger,
            delivery_listener=delivery_listener,
            on_ready=ready,
            inherited=activated[0] if activated else None,
            reconcile_listener=reconcile_listener,
            extra_listeners=listeners,
            on_stopping=stopping,
        )
        return
    import asyncio

    asyncio.run(
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


if __name__ == "__main__":
    main()
