"""How a command ends on an error: one line on stderr and a documented exit code."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

from tcwebhook.errors import EXIT_USAGE, TcwebhookError


def fail(code: int, message: str | None) -> NoReturn:
    if message is not None:
        from tcwebhook import console

        console.error(message)
    sys.exit(code)


def os_error_message(exc: OSError) -> str:
    """Environment trouble nobody anticipated (permissions, disk), as one line (exit 2)."""
    return f"{exc.strerror or exc} ({exc.filename or 'no file'})"


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Our errors, Ctrl-C and unanticipated environment trouble end the command: one line, and
    the exit code the README documents."""
    try:
        yield
    except TcwebhookError as exc:
        fail(exc.exit_code, str(exc))
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as exc:
        fail(EXIT_USAGE, os_error_message(exc))
