"""The ``tcwebhook`` command: parse options, call one library function, render, exit.

Each command group lives in its own module and registers itself here. Heavy modules (aiohttp,
the store, cryptography) are imported inside the commands so that ``--help`` starts fast.
"""

from __future__ import annotations

import sys

import typer

from tcwebhook import __version__
from tcwebhook.cli import (
    check_tls,
    deliver,
    events,
    fetch,
    init,
    inspect,
    reconcile,
    replay,
    samples,
    serve,
    store,
)
from tcwebhook.cli.common import show_flags_as_flags
from tcwebhook.errors import EXIT_USAGE, TcwebhookError

show_flags_as_flags()

app = typer.Typer(
    name="tcwebhook",
    help="Receive, check, replay and inspect Tradecloud webhooks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tcwebhook {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Receive, check, replay and inspect Tradecloud webhooks."""


for module in (
    init,
    serve,
    inspect,
    events,
    check_tls,
    samples,
    replay,
    fetch,
    reconcile,
    deliver,
    store,
):
    module.register(app)


def main() -> None:
    """Entry point: run the app; turn our errors into one line and an exit code."""
    try:
        app()
    except TcwebhookError as exc:
        from tcwebhook import console

        console.error(str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as exc:
        # Environment trouble nobody anticipated (permissions, disk): still one line, exit 2.
        from tcwebhook import console

        console.error(f"{exc.strerror or exc} ({exc.filename or 'no file'})")
        sys.exit(EXIT_USAGE)
