"""``serve`` replaces the command's process with one that loads only the receiver: the same PID
(what systemd and pid files know), without the command line's modules, with the same signals
and stored events. Its one-line errors and exit codes after the replacement are held by the
subprocess tests of tests/test_cli.py."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from tests.helpers.cli import in_process
from tests.helpers.serve import send_all, server_log, start_server


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def test_serve_keeps_its_pid_and_leaves_the_command_line_behind(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    process, url = start_server(data_dir, "--port", "0", "--no-inspector")
    try:
        # The PID the caller started is the receiver (no child was forked for it).
        assert "tcwebhook.cli.serve_process" in _cmdline(process.pid)
        mapped = Path(f"/proc/{process.pid}/maps").read_text()
        # typer loads pydantic (a compiled core); the receiver never needs it
        assert "pydantic_core" not in mapped
        token = (data_dir / "token").read_text().strip()
        ids = [f"lean-{n}" for n in range(5)]
        acknowledged = asyncio.run(send_all(url, token, data_dir / "dev-ca.pem", ids))
        assert acknowledged == set(ids)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    assert code == 0, server_log(process)
    assert b"stopping" in server_log(process)
    listed = in_process("events", "list", "--json", "--data-dir", str(data_dir))
    assert listed.returncode == 0, listed.stderr
    assert all(message_id in listed.stdout for message_id in ids)


def test_in_another_program_serve_runs_in_its_process(tmp_path: Path) -> None:
    """Called in-process (as tests and embedding tools do), serve must not replace the caller:
    this test's own process would be gone."""
    config = tmp_path / "tcwebhook.yaml"
    config.write_text("server:\n  port: [1\n")
    result = in_process("serve", "--config", str(config))
    assert result.returncode == 2 and "invalid YAML" in result.stderr
