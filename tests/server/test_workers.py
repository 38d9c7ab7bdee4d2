"""``serve --workers 2``: two processes on one port, one store, nothing lost or doubled."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tcwebhook.datadir import DEV_CA_FILE
from tcwebhook.store import open_store
from tests.helpers.serve import send_all, start_server


def _children(pid: int) -> list[int]:
    """The forked serve workers of ``pid``: not the inspector's page worker or multiprocessing's
    helpers, which are started by multiprocessing and say so in their command line."""
    children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return [
        c for c in children if b"multiprocessing" not in Path(f"/proc/{c}/cmdline").read_bytes()
    ]


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_two_workers_share_the_port_and_the_store(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ids = [str(uuid.uuid4()) for _ in range(600)]
    process, url = start_server(data_dir, "--port", "0", "--workers", "2")
    try:
        [worker] = _children(process.pid)
        before = _cpu_ticks(worker)
        token = (data_dir / "token").read_text().strip()
        acknowledged = asyncio.run(send_all(url, token, data_dir / DEV_CA_FILE, ids))
        assert _cpu_ticks(worker) - before >= 2  # the forked worker answered its share
        # A second server on the same port is refused, not silently let in beside them.
        port = url.split(":")[2].split("/")[0]
        second = subprocess.run(
            [sys.executable, "-m", "tcwebhook", "serve", "--port", port, "--workers", "2"],
            env={**os.environ, "TCWEBHOOK_DATA_DIR": str(tmp_path / "other")},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert second.returncode == 2
        assert f"cannot listen on 127.0.0.1:{port}" in second.stderr
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    assert not Path(f"/proc/{worker}").exists()  # the worker stopped with it
    assert acknowledged == set(ids)
    store = open_store(f"sqlite:///{data_dir / 'events.db'}")
    events = store.list_events(limit=2 * len(ids))
    assert sorted(event.message_id for event in events) == sorted(ids)


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for whoever reaps it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_workers_exit_when_the_parent_is_killed(tmp_path: Path) -> None:
    process, url = start_server(tmp_path / "data", "--port", "0", "--workers", "2")
    [worker] = _children(process.pid)
    try:
        process.kill()  # no chance to stop its workers itself
        process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _running(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _running(worker)
    finally:
        if _running(worker):
            os.kill(worker, signal.SIGKILL)
    # None of them holds the port any more: a new server can bind it at once, unless another
    # test running beside this one has been given the same port since.
    port = int(url.split(":")[2].split("/")[0])
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            assert not {process.pid, worker} & _listeners(port), port


def _listeners(port: int) -> set[int]:
    """The processes with a listening TCP socket on ``port`` (from /proc)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A":  # 0A: LISTEN
            inodes.add(f"socket:[{fields[9]}]")
    owners = set()
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            if os.readlink(fd) in inodes:
                owners.add(int(fd.parts[2]))
        except OSError:
            continue
    return owners
