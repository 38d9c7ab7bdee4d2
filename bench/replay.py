"""Throughput of ``tcwebhook replay --count 2000 --concurrency 32`` against a local ``serve``.

Starts ``tcwebhook serve`` (development mode, throwaway data directory, free loopback port) as a
subprocess, waits until it answers, runs replay in load mode with --json, and prints the numbers.

    python bench/replay.py [--count 2000] [--concurrency 32] [--sample shipment-issued]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_listening(port: int, server: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"serve exited early with code {server.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"serve did not listen on port {port} within {timeout:g} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--sample", default="shipment-issued")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        port = free_port()
        env = {
            **os.environ,
            "TCWEBHOOK_DATA_DIR": data_dir,
            "TCWEBHOOK_SERVER_PORT": str(port),
            "PYTHONPATH": str(PROJECT_ROOT),
        }
        command = [sys.executable, "-m", "tcwebhook"]
        server = subprocess.Popen(
            [*command, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_until_listening(port, server)
            replay = subprocess.run(
                [*command, "replay", args.sample, "--json", "--count", str(args.count),
                 "--concurrency", str(args.concurrency)],
                env=env, capture_output=True, check=False,
            )  # fmt: skip
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)
    if replay.returncode != 0:
        sys.exit(f"replay failed ({replay.returncode}): {replay.stderr.decode().strip()}")
    report = json.loads(replay.stdout)
    latency = report["latencyMs"]
    print(
        f"replay {args.sample} x{report['sent']} at concurrency {args.concurrency}: "
        f"{report['delivered']} delivered in {report['durationSeconds']:.2f} s, "
        f"{report['throughputPerSecond']:.0f} events/s; latency p50 {latency['p50']:.1f} ms, "
        f"p95 {latency['p95']:.1f} ms, p99 {latency['p99']:.1f} ms"
    )


if __name__ == "__main__":
    main()
