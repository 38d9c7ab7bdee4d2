"""The real ``serve`` with sinks: 1,000 replayed events reach both sinks, even across SIGKILL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson

from tcwebhook.datadir import DEV_CA_FILE
from tests.helpers.serve import client_of_a_killed_server, send_all, start_server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(tmp_path: Path, import_delay: float = 0) -> Path:
    """A directory sink and a command sink that records message ids (taking ``import_delay``)."""
    config = tmp_path / "tcwebhook.yaml"
    runs = tmp_path / "runs.txt"
    pause = f"sleep {import_delay} && " if import_delay else ""  # a process less per event
    command = f"cat > /dev/null && {pause}echo $TCWEBHOOK_MESSAGE_ID >> {runs}"
    config.write_text(
        f"""
data_dir: {tmp_path / "data"}
server:
  port: {free_port()}
sinks:
  - name: erp-files
    type: directory
    path: {tmp_path / "outbox"}
  - name: erp-import
    type: command
    run: ["sh", "-c", "{command}"]
"""
    )
    return config


def tcwebhook(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tcwebhook", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )


def wait_until_delivered(config: Path, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        result = tcwebhook("status", "--json", "--config", str(config))
        report = json.loads(result.stdout)
        unfinished = sum(
            count
            for states in report["deliveries"].values()
            for state, count in states.items()
            if state in ("pending", "running", "failed")
        )
        if unfinished == 0 or time.monotonic() > deadline:
            return report | {"exit": result.returncode}
        time.sleep(0.3)


def delivered_message_ids(tmp_path: Path) -> tuple[list[str], list[str]]:
    """Message ids in the directory sink's files, and those the command sink recorded."""
    outbox, runs = tmp_path / "outbox", tmp_path / "runs.txt"
    paths = outbox.glob("*.json") if outbox.is_dir() else []
    files = [orjson.loads(p.read_bytes())["meta"]["messageId"] for p in paths]
    return files, runs.read_text().split() if runs.exists() else []


def test_replay_1000_events_reach_both_sinks(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    process, _ = start_server(tmp_path / "data", "--config", str(config))
    try:
        result = tcwebhook(
            "replay",
            "--config",
            str(config),
            "--count",
            "1000",
            "--concurrency",
            "20",
            "order-issued",
            "--json",
        )
        assert result.returncode == 0, result.stderr
        assert (
            json.loads(result.stdout)["summary"]["delivered"] == 1000
            if "summary" in result.stdout
            else True
        )
        report = wait_until_delivered(config)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert report["exit"] == 0 and report["healthy"]
    assert report["deliveries"]["erp-files"] == {"done": 1000}
    assert report["deliveries"]["erp-import"] == {"done": 1000}
    files, runs = delivered_message_ids(tmp_path)
    assert len(set(files)) == 1000 and len(files) == 1000
    assert sorted(runs) == sorted(files)


def test_sigkill_with_deliveries_in_flight_loses_none(tmp_path: Path) -> None:
    config = write_config(tmp_path, import_delay=0.01)
    data_dir = tmp_path / "data"
    process, url = start_server(data_dir, "--config", str(config), "--port", "0")
    token = (data_dir / "token").read_text().strip()
    ids = [str(uuid.uuid4()) for _ in range(400)]
    try:
        with client_of_a_killed_server():
            acknowledged = asyncio.run(
                send_all(url, token, data_dir / DEV_CA_FILE, ids, kill=process)
            )
        process.wait(timeout=10)
    finally:
        process.kill()
    _, runs_before = delivered_message_ids(tmp_path)
    assert len(runs_before) < len(acknowledged)  # the slow import was still catching up

    process, _ = start_server(data_dir, "--config", str(config), "--port", "0")
    try:
        report = wait_until_delivered(config, timeout=30)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert report["healthy"]
    files, runs = delivered_message_ids(tmp_path)
    assert acknowledged <= set(files)  # every acknowledged event reached the directory sink
    assert len(files) == len(set(files))  # a repeated delivery overwrote its own file
    assert acknowledged <= set(runs)  # and the command sink (at least once)
