"""Low-level failures: one line per kind and interval, never the client's bytes or a traceback."""

from __future__ import annotations

import logging

import pytest

from tcwebhook.server.errorlog import FailureLog, _EdgeHandler


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_flood_becomes_one_line_per_interval_with_a_count() -> None:
    lines: list[str] = []
    clock = Clock()
    failures = FailureLog(write=lines.append, interval=10.0, clock=clock)
    for _ in range(100_000):
        failures.report("socket.accept() out of system resource", OSError(24, "EMFILE"))
    clock.now = 10.5
    failures.report("socket.accept() out of system resource")
    failures.flush()
    assert lines == [
        "tcwebhook: socket.accept() out of system resource (OSError)",
        "tcwebhook: socket.accept() out of system resource: 99999 more in the last 10 s",
        "tcwebhook: socket.accept() out of system resource",
    ]


def test_edge_records_lose_their_arguments_and_exception_text() -> None:
    lines: list[str] = []
    handler = _EdgeHandler(FailureLog(write=lines.append))
    secret = "Bearer s3cret\r"
    try:
        raise ValueError(f"Invalid header value char: {secret!r}")
    except ValueError as exc:
        record = logging.LogRecord(
            "aiohttp.server", logging.ERROR, __file__, 1, "Error handling request from %s",
            (secret,), (type(exc), exc, exc.__traceback__),
        )  # fmt: skip
    handler.emit(record)
    assert lines == ["tcwebhook: aiohttp.server: Error handling request (ValueError)"]


def test_other_loggers_print_as_before(capsys: pytest.CaptureFixture[str]) -> None:
    handler = _EdgeHandler(FailureLog(write=lambda line: None))
    record = logging.LogRecord(
        "tcwebhook.delivery", logging.WARNING, __file__, 1, "sink %s failed", ("erp",), None
    )
    handler.emit(record)
    assert capsys.readouterr().err == "sink erp failed\n"
