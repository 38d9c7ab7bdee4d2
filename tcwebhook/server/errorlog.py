"""Low-level failures of the network edge as rare, credential-free lines on stderr.

A hostile or broken client can make aiohttp and asyncio log on every connection: "Error handling
request" with the raw header line (bearer token included) in the exception, failed TLS
handshakes, ``accept()`` out of file descriptors. Printed as they come, that was hundreds of
thousands of tracebacks a minute. Here each kind of failure prints one line, then at most one
line per interval with how many more there were; exception messages (which may quote what the
client sent) are never printed, only their type.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

INTERVAL = 10.0  # seconds between two lines about the same kind of failure
# Loggers whose records may carry request bytes in their exceptions or arguments.
_EDGE_LOGGERS = ("aiohttp", "asyncio", "tcwebhook.server")
_ARGUMENT = re.compile(r"\s*(?:from\s+)?%[-#0 +\d.]*[sdrif]")  # "from %s", "%s": left out


@dataclass
class _Window:
    started: float
    suppressed: int = 0


@dataclass
class FailureLog:
    """Counts failures by kind; writes the first of each interval and a count of the rest."""

    write: Callable[[str], None] = field(default=lambda line: _stderr(line))
    interval: float = INTERVAL
    clock: Callable[[], float] = time.monotonic
    _windows: dict[str, _Window] = field(default_factory=dict)

    def report(self, kind: str, exception: BaseException | None = None) -> None:
        now = self.clock()
        window = self._windows.get(kind)
        if window is not None and now - window.started < self.interval:
            window.suppressed += 1
            return
        if window is not None and window.suppressed:
            self.write(self._summary(kind, window))
        self._windows[kind] = _Window(now)
        reason = f" ({type(exception).__name__})" if exception is not None else ""
        self.write(f"tcwebhook: {kind}{reason}")

    def flush(self) -> None:
        """Write the counts still pending (at shutdown)."""
        for kind, window in self._windows.items():
            if window.suppressed:
                self.write(self._summary(kind, window))
                window.suppressed = 0

    def _summary(self, kind: str, window: _Window) -> str:
        return f"tcwebhook: {kind}: {window.suppressed} more in the last {self.interval:g} s"


def _stderr(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


class _EdgeHandler(logging.Handler):
    """Root handler: edge loggers go through ``FailureLog``; the rest print as before."""

    def __init__(self, failures: FailureLog) -> None:
        super().__init__(logging.WARNING)
        self.failures = failures
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(_EDGE_LOGGERS):
            # The template, not the formatted message: its arguments may hold request bytes.
            exception = record.exc_info[1] if record.exc_info else None
            template = _ARGUMENT.sub("", str(record.msg))
            self.failures.report(f"{record.name}: {template}", exception)
            return
        _stderr(self.format(record))


def install(failures: FailureLog) -> None:
    """Route this process's logging and the running loop's exception handler to ``failures``."""
    root = logging.getLogger()
    for old in list(root.handlers):
        if isinstance(old, _EdgeHandler):
            root.removeHandler(old)
    root.addHandler(_EdgeHandler(failures))
    # aiohttp logs at DEBUG what it expects from the internet; asyncio at DEBUG in debug mode.
    for name in _EDGE_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exception = context.get("exception")
        failures.report(
            str(context.get("message") or "event loop error"),
            exception if isinstance(exception, BaseException) else None,
        )

    asyncio.get_running_loop().set_exception_handler(handler)
