"""Running the real ``tcwebhook`` command in a subprocess, and checking its errors."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.paths import REPOSITORY


def tcwebhook(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tcwebhook", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200"},
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and fragment in lines[0]
    assert "Traceback" not in result.stderr


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str
    stdout_bytes: bytes


CliRunner = Callable[..., Awaitable[Result]]


async def run_cli(
    *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None
) -> Result:
    """Run ``tcwebhook`` in a subprocess without blocking the loop (the test's servers keep
    serving meanwhile), with this checkout's package whatever the environment has installed."""
    environment = {**os.environ, **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")])
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tcwebhook",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environment,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(stdin), timeout=60)
    assert process.returncode is not None
    return Result(process.returncode, stdout.decode(), stderr.decode(), stdout)


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def in_process(*args: str, columns: int = 250) -> subprocess.CompletedProcess[str]:
    """The real command (``tcwebhook.cli.main``: parsing, errors, exit code) run in this process:
    what a subprocess would print and exit with, without starting an interpreter, which costs
    seconds on a busy machine. Only from synchronous tests (commands may run an event loop)."""
    import contextlib
    import io

    from tcwebhook import console
    from tcwebhook.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved_argv, saved_columns = sys.argv, os.environ.get("COLUMNS")
    sys.argv, os.environ["COLUMNS"] = ["tcwebhook", *args], str(columns)
    console.stdout.cache_clear()  # consoles are made once per process, for its real streams
    console.stderr.cache_clear()
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    finally:
        sys.argv = saved_argv
        if saved_columns is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = saved_columns
        console.stdout.cache_clear()
        console.stderr.cache_clear()
    return subprocess.CompletedProcess(["tcwebhook", *args], code, out.getvalue(), err.getvalue())
