"""The ``tcwebhook`` command's typer app: every command group, and the entry point.

Each command group lives in its own module and registers itself here. The library is imported
inside each command, not at the top of these modules: ``tcwebhook --help`` loads every command
module, and loading the server, the store, the TLS checker, reconcile and the inspector with them
(aiohttp, cryptography, jinja2) measured 4 to 8 s more on a busy 2-core machine, against about
1 s for the command modules alone. Library modules themselves import at the top.
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
    requests,
    samples,
    serve,
    store,
)
from tcwebhook.cli.common import Invocation, show_flags_as_flags
from tcwebhook.cli.exits import fail, one_line_errors
from tcwebhook.errors import EXIT_CHECK_FAILED, EXIT_USAGE

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


def entry() -> None:
    """The installed ``tcwebhook`` and ``python -m tcwebhook``: the process is the command's."""
    main(own_process=True)


def main(own_process: bool = False) -> None:
    """Run the app; turn our errors and typer's into one line and an exit code.

    ``own_process``: the process is this command's alone, so ``serve`` may replace it with a
    leaner one (``tcwebhook.cli.serve_process``); not when the command runs inside another
    program (tests call it in-process).
    """
    from tcwebhook.cli.usage import ClickException, UsageError, usage_message

    with one_line_errors():
        try:
            code = app(prog_name="tcwebhook", standalone_mode=False, obj=Invocation(own_process))
        except UsageError as exc:
            fail(EXIT_USAGE, None if _help_shown(exc) else usage_message(exc))
        except ClickException as exc:
            fail(getattr(exc, "exit_code", 1), usage_message(exc))
        except typer.Abort:
            fail(EXIT_CHECK_FAILED, "aborted")
    # Without standalone mode typer returns the code of ``typer.Exit`` (or a command's result).
    sys.exit(code if isinstance(code, int) else 0)


def _help_shown(exc: Exception) -> bool:
    # A group or command run without arguments prints its help (no_args_is_help), then raises.
    return type(exc).__name__ == "NoArgsIsHelpError"
