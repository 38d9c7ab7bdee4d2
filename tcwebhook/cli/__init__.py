"""The ``tcwebhook`` command: parse options, call one library function, render, exit.

Each command group lives in its own module and registers itself here. The library is imported
inside each command, not at the top of these modules: ``tcwebhook --help`` loads every command
module, and loading the server, the store, the TLS checker, reconcile and the inspector with them
(aiohttp, cryptography, jinja2) measured 4 to 8 s more on a busy 2-core machine, against about
1 s for the command modules alone. Library modules themselves import at the top.
"""

from __future__ import annotations

import sys
from typing import NoReturn

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
    requests,
    samples,
    serve,
    store,
)
from tcwebhook.cli.common import show_flags_as_flags
from tcwebhook.errors import EXIT_CHECK_FAILED, EXIT_USAGE, TcwebhookError

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
    requests,
):
    module.register(app)


def main() -> None:
    """Entry point: run the app; turn our errors and typer's into one line and an exit code."""
    from tcwebhook.cli.usage import ClickException, UsageError, usage_message

    try:
        code = app(prog_name="tcwebhook", standalone_mode=False)
    except UsageError as exc:
        _fail(EXIT_USAGE, None if _help_shown(exc) else usage_message(exc))
    except ClickException as exc:
        _fail(getattr(exc, "exit_code", 1), usage_message(exc))
    except typer.Abort:
        _fail(EXIT_CHECK_FAILED, "aborted")
    except TcwebhookError as exc:
        _fail(exc.exit_code, str(exc))
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as exc:
        # Environment trouble nobody anticipated (permissions, disk): still one line, exit 2.
        _fail(EXIT_USAGE, f"{exc.strerror or exc} ({exc.filename or 'no file'})")
    # Without standalone mode typer returns the code of ``typer.Exit`` (or a command's result).
    sys.exit(code if isinstance(code, int) else 0)


def _help_shown(exc: Exception) -> bool:
    # A group or command run without arguments prints its help (no_args_is_help), then raises.
    return type(exc).__name__ == "NoArgsIsHelpError"


def _fail(code: int, message: str | None) -> NoReturn:
    if message is not None:
        from tcwebhook import console

        console.error(message)
    sys.exit(code)
