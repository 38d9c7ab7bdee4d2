"""``serve`` and SIGHUP: what a reload cannot apply is said, by key, in one log line."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from tests.helpers.pg import free_port
from tests.helpers.serve import start_server


def _wait_for(log: Path, text: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = log.read_text()
        if text in content:
            return content
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in {log.read_text()}")


def test_a_reload_names_the_settings_that_need_a_restart(tmp_path: Path) -> None:
    config = tmp_path / "tcwebhook.yaml"
    config.write_text("auth:\n  token: first-token-0123456789\n")
    process, _ = start_server(tmp_path / "data", "--port", "0", "--config", str(config))
    log = next((tmp_path).glob("serve-*.log"))
    try:
        metrics_port = free_port()
        config.write_text(
            "auth:\n  token: second-token-0123456789\n"
            f"metrics:\n  listen: 127.0.0.1:{metrics_port}\n"
            f"store:\n  url: sqlite:///{tmp_path / 'elsewhere.db'}\n"
        )
        process.send_signal(signal.SIGHUP)
        content = _wait_for(log, "reload cannot change")
        lines = [line for line in content.splitlines() if "reload cannot change" in line]
        assert len(lines) == 1
        assert "metrics.listen" in lines[0] and "store.url" in lines[0]
        assert "restart" in lines[0] and "auth" not in lines[0]
        # only credentials changed: applied, nothing to say
        config.write_text("auth:\n  token: third-token-0123456789\n")
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while log.read_text().count("reloaded") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert log.read_text().count("reloaded") == 2
        assert log.read_text().count("reload cannot change") == 1
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    content = log.read_text()
    assert "second-token" not in content and "third-token" not in content
    assert "elsewhere.db" not in content  # a store URL may hold a password: named, not shown
