"""Benchmark driver behind ``bench/run``: interleaved wrk cells, durability check, extras.

Every server runs as a fresh process per cell (so peak RSS is per cell) on loopback with TLS and
keep-alive. After each ``tcwebhook serve`` cell the stored events are counted: fewer stored
events than 2xx answers fails the run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))  # measure this tree, whatever tcwebhook is installed elsewhere


def _free_port() -> int:
    """A port nothing listens on now, so two runs on one machine do not collide."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


PORT = _free_port()


class BenchFailure(Exception):
    """The run cannot continue or its result is wrong; str() is the sentence."""


@dataclass
class Cell:
    target: str
    size: str
    connections: int
    requests: int = 0
    answered_2xx: int = 0  # warm-up and measured run: what must have been stored
    measured_2xx: int = 0  # the measured run only: what its CPU time is divided by
    errors: int = 0
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    peak_rss_mb: float = 0.0
    cpu_s: float = 0.0  # CPU time of every process and thread of the server in the measured run
    cpu_us_per_2xx: float = 0.0
    stored: int | None = None
    skipped: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------
# Targets: how to start each server, and how to count what it stored


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    data_dir: Path
    count_stored: Any  # () -> int | None


class Environment:
    """Shared files: certificates, token, bodies; one scratch directory per run."""

    def __init__(self, scratch: Path) -> None:
        from tcwebhook.auth.static import dev_token
        from tcwebhook.server.tls import dev_certificates

        self.scratch = scratch
        self.pki = scratch / "pki"
        self.certificates = dev_certificates(self.pki)
        self.token = dev_token(self.pki)
        self.bodies = scratch / "bodies"
        output = subprocess.run(
            [sys.executable, str(BENCH / "payloads.py"), str(self.bodies)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        self.body_sizes: dict[str, int] = json.loads(output)
        self.python_env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.counter = 0
        self.postgres: Any = None  # tests.helpers.pg.PostgresServer, started for the first PG cell

    def postgres_url(self) -> str:
        """A fresh schema on a throwaway local PostgreSQL (fsync on, like production)."""
        if self.postgres is None:
            sys.path.insert(0, str(ROOT))
            from tests.helpers.pg import start_server

            self.postgres = start_server()
        return str(self.postgres.new_schema())

    def close(self) -> None:
        if self.postgres is not None:
            self.postgres.destroy()

    def fresh_dir(self, name: str) -> Path:
        self.counter += 1
        path = self.scratch / f"{self.counter:03d}-{name}"
        path.mkdir()
        return path

    def tcwebhook_data_dir(self, name: str) -> Path:
        """A new data dir holding the shared dev CA and token, so serve reuses them."""
        data_dir = self.fresh_dir(name)
        for item in self.pki.iterdir():
            shutil.copy2(item, data_dir / item.name)
        return data_dir


def start_target(env: Environment, target: str, port: int) -> Running:
    if target == "baseline":
        data_dir = env.fresh_dir(target)
        command = [
            sys.executable, str(BENCH / "baseline_server.py"), "--port", str(port),
            "--cert", str(env.certificates.cert), "--key", str(env.certificates.key),
            "--token-file", str(env.pki / "token"),
        ]  # fmt: skip
        return Running(_spawn(command, env.python_env, data_dir), data_dir, lambda: None)
    if target == "floor":  # the baseline plus tcwebhook's store, nothing else
        data_dir = env.fresh_dir(target)
        command = [
            sys.executable, str(BENCH / "floor_server.py"), "--port", str(port),
            "--cert", str(env.certificates.cert), "--key", str(env.certificates.key),
            "--token-file", str(env.pki / "token"), "--database", str(data_dir / "events.db"),
        ]  # fmt: skip
        process = _spawn(command, env.python_env, data_dir)
        return Running(process, data_dir, lambda: _count_sqlite(data_dir / "events.db"))
    if target.startswith("tcwebhook-pg"):  # the PostgreSQL store; -w2: two serve processes
        data_dir = env.tcwebhook_data_dir(target)
        url = env.postgres_url()
        command = [sys.executable, "-m", "tcwebhook", "serve", "--port", str(port)]
        command += ["--log-format", "json"]
        if target.endswith("-w2"):
            command += ["--workers", "2"]
        process_env = dict(env.python_env, TCWEBHOOK_DATA_DIR=str(data_dir))
        process_env["TCWEBHOOK_STORE_URL"] = url
        process = _spawn(command, process_env, data_dir, cwd=data_dir)
        return Running(process, data_dir, lambda: _count_store(url))
    if target.startswith("tcwebhook"):
        data_dir = env.tcwebhook_data_dir(target)
        command = [sys.executable, "-m", "tcwebhook", "serve", "--port", str(port)]
        if target != "tcwebhook-rich":
            command += ["--log-format", "json"]
        if target.startswith("tcwebhook-w"):  # tcwebhook-w2: serve --workers 2
            command += ["--workers", target.removeprefix("tcwebhook-w")]
        if target == "tcwebhook-sink":
            config = data_dir / "tcwebhook.yaml"
            config.write_text(
                f"sinks:\n  - name: outbox\n    type: directory\n    path: {data_dir / 'outbox'}\n"
            )
            command += ["--config", str(config)]
        process_env = dict(env.python_env, TCWEBHOOK_DATA_DIR=str(data_dir))
        process = _spawn(command, process_env, data_dir, cwd=data_dir)
        return Running(process, data_dir, lambda: _count_sqlite(data_dir / "events.db"))
    if target == "webhook":
        data_dir = env.fresh_dir(target)
        out = data_dir / "events.jsonl"
        hooks = [
            {
                "id": "order",
                "execute-command": str(BENCH / "peer_append.sh"),
                "command-working-directory": str(data_dir),
                "include-command-output-in-response": True,  # answer after the append
                "http-methods": ["POST"],
                "pass-arguments-to-command": [
                    {"source": "string", "name": str(out)},
                    {"source": "entire-payload"},
                ],
                "trigger-rule": {
                    "match": {
                        "type": "value",
                        "value": f"Bearer {env.token}",
                        "parameter": {"source": "header", "name": "Authorization"},
                    }
                },
            }
        ]
        (data_dir / "hooks.json").write_text(json.dumps(hooks))
        command = [
            "webhook", "-secure", "-cert", str(env.certificates.cert),
            "-key", str(env.certificates.key), "-ip", "127.0.0.1", "-port", str(port),
            "-hooks", str(data_dir / "hooks.json"), "-urlprefix", "tradecloud",
        ]  # fmt: skip
        return Running(_spawn(command, None, data_dir), data_dir, lambda: _count_lines(out))
    if target == "flask":
        data_dir = env.fresh_dir(target)
        out = data_dir / "events.jsonl"
        command = [
            sys.executable, "-m", "gunicorn", "--workers", str(os.cpu_count() or 2),
            "--bind", f"127.0.0.1:{port}", "--certfile", str(env.certificates.cert),
            "--keyfile", str(env.certificates.key), "--chdir", str(BENCH),
            "--log-level", "warning", "flask_receiver:app",
        ]  # fmt: skip
        process_env = dict(env.python_env, BENCH_TOKEN=env.token, BENCH_OUT=str(out))
        return Running(_spawn(command, process_env, data_dir), data_dir, lambda: _count_lines(out))
    raise ValueError(target)


def _spawn(
    command: list[str], env: dict[str, str] | None, data_dir: Path, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    log = (data_dir / "server.log").open("wb")
    return subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True
    )


def _count_sqlite(path: Path) -> int:
    connection = sqlite3.connect(path)
    try:
        return int(connection.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        connection.close()


def _count_store(url: str) -> int:
    from tcwebhook.store import open_store

    store = open_store(url)
    try:
        return store.count()
    finally:
        store.close()


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def wait_ready(running: Running, port: int, timeout: float = 20.0) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            log = (running.data_dir / "server.log").read_text(errors="replace").strip()
            last = log.splitlines()[-1] if log else f"exit code {running.process.returncode}"
            raise BenchFailure(f"server did not start: {last}")
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=1) as raw,
                context.wrap_socket(raw, server_hostname="localhost"),
            ):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchFailure(f"server did not listen on port {port} within {timeout:.0f} s")


def stop(running: Running) -> None:
    if running.process.poll() is None:
        os.killpg(running.process.pid, signal.SIGTERM)
        try:
            running.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(running.process.pid, signal.SIGKILL)
            running.process.wait()


def peak_rss_mb(pid: int) -> float:
    """VmHWM of the process plus its children (gunicorn workers), in MB."""
    total = 0
    for candidate in [pid, *_children(pid)]:
        try:
            status = Path(f"/proc/{candidate}/status").read_text()
        except OSError:
            continue
        match = re.search(r"VmHWM:\s+(\d+) kB", status)
        if match:
            total += int(match.group(1))
    return total / 1024


def current_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else 0.0


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU of every process in the server's process group, all threads included.

    The server is started in a session of its own, so the group is the server, its forked
    workers and pools (an exited thread's time stays in its process's counters).
    """
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # After the command name: state, ppid, pgrp, ... utime is field 14, stime 15 of stat(5).
        if int(fields[2]) == pgid:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


# ------------------------------------------------------------------------------------------
# wrk


def run_wrk(
    env: Environment, port: int, size: str, connections: int, seconds: float, tag: str
) -> dict[str, Any]:
    threads = min(connections, os.cpu_count() or 2)
    duration = f"-d{max(1, round(seconds))}s"
    command = [
        "wrk", f"-t{threads}", f"-c{connections}", duration, "--timeout", "5s",
        "-s", str(BENCH / "post.lua"), f"https://127.0.0.1:{port}/tradecloud/order",
    ]  # fmt: skip
    wrk_env = dict(
        os.environ,
        BENCH_BODY_DIR=str(env.bodies),
        BENCH_BODY=size,
        BENCH_TOKEN=env.token,
        BENCH_TAG=tag,
    )
    completed = subprocess.run(command, env=wrk_env, capture_output=True, text=True, timeout=120)
    match = re.search(r"BENCH-RESULT (\{.*\})", completed.stdout)
    if completed.returncode != 0 or not match:
        raise BenchFailure(f"wrk failed: {(completed.stderr or completed.stdout).strip()[-300:]}")
    result: dict[str, Any] = json.loads(match.group(1))
    return result


def run_cell(
    env: Environment, target: str, size: str, connections: int, seconds: float, warmup: float
) -> Cell:
    cell = Cell(target, size, connections)
    port = PORT
    running = start_target(env, target, port)
    try:
        wait_ready(running, port)
        tag = f"{env.scratch.name}-{env.counter:03d}"
        warm = run_wrk(env, port, size, connections, warmup, tag + "w")
        cpu_before = group_cpu_seconds(running.process.pid)
        main = run_wrk(env, port, size, connections, seconds, tag + "m")
        cell.cpu_s = round(group_cpu_seconds(running.process.pid) - cpu_before, 3)
        cell.peak_rss_mb = round(peak_rss_mb(running.process.pid), 1)
    finally:
        stop(running)
    cell.requests = main["requests"]
    cell.errors = (
        main["non_2xx"] + main["connect_errors"] + main["read_errors"] + main["write_errors"]
        + main["timeouts"]
    )  # fmt: skip
    cell.rps = round(main["requests"] / (main["duration_us"] / 1e6), 1)
    cell.p50_ms = round(main["p50_us"] / 1000, 2)
    cell.p99_ms = round(main["p99_us"] / 1000, 2)
    answered = sum(run["requests"] - run["non_2xx"] for run in (warm, main))
    cell.measured_2xx = main["requests"] - main["non_2xx"]
    cell.cpu_us_per_2xx = cpu_per_2xx([cell])
    cell.answered_2xx = answered
    cell.stored = running.count_stored()
    durable = target.startswith("tcwebhook") or target == "floor"
    if durable and cell.stored is not None and cell.stored < answered:
        raise BenchFailure(
            f"{target} answered 2xx to {answered} requests but stored only {cell.stored} events"
        )
    return cell


def sinks_supported(env: Environment) -> str | None:
    """None if ``sinks:`` loads; otherwise the loader's one-line reason (the cell is skipped)."""
    data_dir = env.fresh_dir("sink-probe")
    config = data_dir / "tcwebhook.yaml"
    config.write_text(
        f"sinks:\n  - name: outbox\n    type: directory\n    path: {data_dir / 'outbox'}\n"
    )
    probe = (
        "import sys\n"
        "from pathlib import Path\nfrom tcwebhook.config import load_settings\n"
        "from tcwebhook.errors import TcwebhookError\n"
        "try:\n"
        f"    load_settings(Path({str(config)!r}))\n"
        "except TcwebhookError as exc:\n"
        "    print(exc); sys.exit(1)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe], env=env.python_env, capture_output=True, text=True
    )
    if completed.returncode == 0:
        return None
    return (completed.stdout or completed.stderr).strip().splitlines()[-1]


# ------------------------------------------------------------------------------------------
# Extras


def measure_help(env: Environment, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "tcwebhook", "--help"],
            env=env.python_env,
            check=True,
            capture_output=True,
        )
        times.append(time.perf_counter() - started)
    return round(statistics.median(times), 3)


def _has_command(env: Environment, *words: str) -> str | None:
    completed = subprocess.run(
        [sys.executable, "-m", "tcwebhook", *words, "--help"],
        env=env.python_env,
        capture_output=True,
        text=True,
    )
    return completed.stdout if completed.returncode == 0 else None


def measure_idle(env: Environment, count: int) -> dict[str, Any]:
    running = start_target(env, "tcwebhook", PORT)
    try:
        wait_ready(running, PORT)
        before = current_rss_mb(running.process.pid)
        client = subprocess.Popen(
            [sys.executable, str(BENCH / "idle_connections.py"), "--port", str(PORT),
             "--count", str(count)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert client.stdout is not None and client.stdin is not None
        line = client.stdout.readline().split()
        opened = int(line[1]) if len(line) == 2 else 0
        time.sleep(0.5)
        held = current_rss_mb(running.process.pid)
        peak = peak_rss_mb(running.process.pid)
        client.stdin.close()
        client.wait(timeout=30)
    finally:
        stop(running)
    return {
        "connections": opened,
        "rss_before_mb": round(before, 1),
        "rss_holding_mb": round(held, 1),
        "peak_rss_mb": round(peak, 1),
    }


def measure_replay(env: Environment, count: int, concurrency: int) -> dict[str, Any]:
    help_text = _has_command(env, "replay")
    if help_text is None or "--count" not in help_text:
        return {"skipped": "tcwebhook replay --count is not available in this tree"}
    running = start_target(env, "tcwebhook", PORT)
    try:
        wait_ready(running, PORT)
        replay_env = dict(
            env.python_env,
            TCWEBHOOK_DATA_DIR=str(running.data_dir),
            TCWEBHOOK_SERVER_PORT=str(PORT),
        )
        started = time.perf_counter()
        completed = subprocess.run(
            [sys.executable, "-m", "tcwebhook", "replay", "--count", str(count),
             "--concurrency", str(concurrency), "order-issued"],
            env=replay_env, cwd=running.data_dir, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        elapsed = time.perf_counter() - started
    finally:
        stop(running)
    if completed.returncode != 0:
        lines = (completed.stderr or completed.stdout).strip().splitlines() or ["?"]
        return {"skipped": f"replay failed (exit {completed.returncode}): {lines[-1]}"}
    return {
        "count": count,
        "concurrency": concurrency,
        "seconds": round(elapsed, 2),
        "events_per_s": round(count / elapsed, 1),
        "stored": running.count_stored(),
    }


def measure_delivery(env: Environment, quick: bool) -> dict[str, Any]:
    """The delivery cell (bench/delivery.py): an ordered directory sink's files/s while
    ``serve`` ingests at a fixed rate, and draining a backlog alone."""
    help_text = _has_command(env, "serve")
    if help_text is None or "--config" not in help_text:
        return {"skipped": "tcwebhook serve --config is not available in this tree"}
    rate, seconds, backlog_events = ("100", "2", "1000") if quick else ("450", "30", "100000")
    runs = {
        "ingest": ["ingest", "--rate", rate, "--seconds", seconds],
        "backlog": ["backlog", "--events", backlog_events],
    }
    result: dict[str, Any] = {}
    for name, arguments in runs.items():
        completed = subprocess.run(
            [sys.executable, str(BENCH / "delivery.py"), *arguments, "--connections", "16"],
            env=env.python_env, capture_output=True, text=True, timeout=1800,
        )  # fmt: skip
        if completed.returncode != 0:
            lines = (completed.stderr or completed.stdout).strip().splitlines() or ["?"]
            raise BenchFailure(f"delivery {name} failed: {lines[-1]}")
        result[name] = json.loads(completed.stdout.strip().splitlines()[-1])
    ingest, backlog = result["ingest"], result["backlog"]
    # Keeping up: files written while ingesting at least the events taken in.
    result["keeps_up"] = ingest["files_per_s"] >= 0.95 * ingest["ingest_per_s"]
    result["backlog_over_ingest"] = round(backlog["files_per_s"] / ingest["ingest_per_s"], 2)
    return result


def measure_check_tls(env: Environment) -> dict[str, Any]:
    help_text = _has_command(env, "check-tls")
    if help_text is None or "--ca-file" not in help_text:
        return {"skipped": "tcwebhook check-tls is not available in this tree"}
    running = start_target(env, "tcwebhook", PORT)
    try:
        wait_ready(running, PORT)
        started = time.perf_counter()
        completed = subprocess.run(
            [sys.executable, "-m", "tcwebhook", "check-tls",
             f"https://localhost:{PORT}/tradecloud/order", "--ca-file",
             str(env.certificates.ca)],
            env=env.python_env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        elapsed = time.perf_counter() - started
    finally:
        stop(running)
    return {"seconds": round(elapsed, 2), "exit_code": completed.returncode}


# ------------------------------------------------------------------------------------------
# Plan, report


def _postgres_available() -> bool:
    """psycopg importable and PostgreSQL's server binaries installed."""
    sys.path.insert(0, str(ROOT))
    try:
        import psycopg  # noqa: F401

        from tests.helpers.pg import find_bindir

        find_bindir()
    except Exception:
        return False
    return True


def plan(
    quick: bool, sink_reason: str | None, flask: bool, postgres: bool, rounds: int = 2
) -> list[tuple[str, str, int]]:
    sizes = ["small"] if quick else ["small", "large"]
    connection_counts = [64] if quick else [16, 64]
    cells = []
    for size in sizes:
        for connections in connection_counts:
            # A B A B ...; at 64 connections with the floor F (the store alone): A F B A F B
            alternated = ["baseline", "floor", "tcwebhook"] if connections == 64 else []
            order = (alternated or ["baseline", "tcwebhook"]) * rounds
            if sink_reason is None:
                order.append("tcwebhook-sink")
            order.append("webhook")
            if flask and not quick:
                order.append("flask")
            if connections == 64 and not quick:
                order.append("tcwebhook-w2")  # serve --workers 2
            if size == "small" and connections == 64 and not quick:
                order.append("tcwebhook-rich")
            if postgres and connections == 64:  # one and two serve processes on PostgreSQL
                order += ["tcwebhook-pg"] if quick else ["tcwebhook-pg", "tcwebhook-pg-w2"]
            cells.extend((target, size, connections) for target in order)
    return cells


def cpu_per_2xx(cells: list[Cell]) -> float:
    """The cells' CPU time over their measured 2xx answers, pooled (0.0 if none answered).

    Pooled rather than a mean of per-cell figures, so that a cell that answered nothing (a
    server still busy with 64 handshakes on a loaded machine) does not count as free.
    """
    answered = sum(c.measured_2xx for c in cells)
    return round(sum(c.cpu_s for c in cells) * 1e6 / answered, 1) if answered else 0.0


def summarise(cells: list[Cell]) -> list[dict[str, Any]]:
    """One row per (target, size, connections): means of the repeats, ratio to the baseline."""
    groups: dict[tuple[str, str, int], list[Cell]] = {}
    for cell in cells:
        groups.setdefault((cell.target, cell.size, cell.connections), []).append(cell)
    rows = []
    for (target, size, connections), members in groups.items():
        rows.append(
            {
                "target": target,
                "size": size,
                "connections": connections,
                "runs": len(members),
                "rps": round(statistics.mean(c.rps for c in members), 1),
                "p50_ms": round(statistics.mean(c.p50_ms for c in members), 2),
                "p99_ms": round(statistics.mean(c.p99_ms for c in members), 2),
                "errors": sum(c.errors for c in members),
                "peak_rss_mb": max(c.peak_rss_mb for c in members),
                "cpu_us_per_2xx": cpu_per_2xx(members),
                "answered_2xx": sum(c.answered_2xx for c in members),
                "stored": (
                    None
                    if any(c.stored is None for c in members)
                    else sum(c.stored or 0 for c in members)
                ),
            }
        )
    for row in rows:
        baseline = next(
            r
            for r in rows
            if r["target"] == "baseline"
            and r["size"] == row["size"]
            and r["connections"] == row["connections"]
        )
        row["ratio"] = round(row["rps"] / baseline["rps"], 2) if baseline["rps"] else None
        # The figure that travels to another machine: CPU per answered request against the
        # baseline's, whatever share of the cores the load generator took.
        base_cpu = baseline["cpu_us_per_2xx"]
        row["cpu_ratio"] = round(row["cpu_us_per_2xx"] / base_cpu, 2) if base_cpu else None
        sqlite = next(
            (
                r
                for r in rows
                if r["target"] == "tcwebhook"
                and r["size"] == row["size"]
                and r["connections"] == row["connections"]
            ),
            None,
        )
        if row["target"].startswith("tcwebhook-pg") and sqlite and sqlite["rps"]:
            row["ratio_sqlite"] = round(row["rps"] / sqlite["rps"], 2)
    return rows


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def markdown(report: dict[str, Any]) -> str:
    sizes = report["body_sizes"]
    lines = [
        f"Run {report['date']} on {report['machine']['cores']} cores, "
        f"{report['machine']['cpu']}, Python {report['machine']['python']}"
        f"{' (quick mode)' if report['quick'] else ''}.",
        "",
        "| target | body | conns | CPU us/2xx | x baseline CPU | req/s | x baseline | p50 ms "
        "| p99 ms | errors | peak RSS MB | 2xx | stored |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["rows"]:
        body = f"{row['size']} ({sizes[row['size']] / 1000:.0f} KB)"
        stored = "-" if row["stored"] is None else str(row["stored"])
        lines.append(
            f"| {row['target']} | {body} | {row['connections']} | {row['cpu_us_per_2xx']:.0f} "
            f"| {'-' if row['cpu_ratio'] is None else format(row['cpu_ratio'], '.2f')} "
            f"| {row['rps']:.0f} "
            f"| {row['ratio']:.2f} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | {row['errors']} "
            f"| {row['peak_rss_mb']:.0f} | {row['answered_2xx']} | {stored} |"
        )
    lines.append("")
    for row in report["rows"]:
        if "ratio_sqlite" in row:
            lines.append(
                f"- {row['target']} ({row['size']}, {row['connections']} connections): "
                f"{row['ratio_sqlite']:.2f}x the SQLite store's req/s"
            )
    for name, value in report["extras"].items():
        lines.append(f"- {name}: {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description="tcwebhook benchmark (see BENCHMARKS.md)")
    parser.add_argument("--quick", action="store_true", help="smoke test: short cells, one size")
    parser.add_argument("--seconds", type=float, help="length of a measured cell")
    parser.add_argument("--results", type=Path, default=BENCH / "results")
    parser.add_argument(
        "--rounds", type=int, default=2, help="baseline and tcwebhook cells, alternated, per size"
    )
    parser.add_argument(
        "--only", help="comma-separated targets to run (e.g. baseline,tcwebhook,tcwebhook-pg)"
    )
    parser.add_argument(
        "--no-postgres", action="store_true", help="skip the PostgreSQL store's cells"
    )
    parser.add_argument(
        "--no-delivery", action="store_true", help="skip the delivery cell (bench/delivery.py)"
    )
    arguments = parser.parse_args()
    quick = arguments.quick
    seconds = arguments.seconds or (2.0 if quick else 10.0)
    warmup = 1.0 if quick else 2.0
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="tcwebhook-bench-") as scratch,
        contextlib.ExitStack() as cleanup,
    ):
        env = Environment(Path(scratch))
        cleanup.callback(env.close)
        sink_reason = sinks_supported(env)
        flask = subprocess.run(
            [sys.executable, "-c", "import flask, gunicorn"], capture_output=True
        ).returncode == 0  # fmt: skip
        cells: list[Cell] = []
        skipped: dict[str, str] = {}
        if sink_reason is not None:
            skipped["tcwebhook-sink"] = f"sinks not supported yet ({sink_reason})"
        if not flask and not quick:
            skipped["flask"] = "flask and gunicorn are not installed"
        postgres = not arguments.no_postgres and _postgres_available()
        if not postgres and not arguments.no_postgres:
            skipped["tcwebhook-pg"] = "PostgreSQL or psycopg is not installed"
        only = set(arguments.only.split(",")) if arguments.only else None
        cells_planned = plan(quick, sink_reason, flask, postgres, arguments.rounds)
        for target, size, connections in cells_planned:
            if only is not None and target not in only:
                continue
            cell = run_cell(env, target, size, connections, seconds, warmup)
            cells.append(cell)
            print(
                f"{target:15} {size:5} c={connections:<3} {cell.rps:8.0f} req/s  "
                f"cpu {cell.cpu_us_per_2xx:6.0f} us/2xx  "
                f"p99 {cell.p99_ms:7.1f} ms  rss {cell.peak_rss_mb:5.0f} MB  "
                f"2xx {cell.answered_2xx}  stored {cell.stored}",
                file=sys.stderr,
                flush=True,
            )
        extras: dict[str, Any] = {
            "help_startup_s_median": measure_help(env, 3 if quick else 10),
            "idle_keepalive": measure_idle(env, 100 if quick else 1000),
        }
        if not arguments.no_delivery:
            extras["delivery"] = measure_delivery(env, quick)
        if not quick:
            extras["replay"] = measure_replay(env, 2000, 32)
            extras["check_tls"] = measure_check_tls(env)
        extras.update({f"skipped_{name}": reason for name, reason in skipped.items()})
        report = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "quick": quick,
            "seconds_per_cell": seconds,
            "machine": machine(),
            "body_sizes": env.body_sizes,
            "rows": summarise(cells),
            "cells": [asdict(cell) for cell in cells],
            "extras": extras,
            "wall_s": round(time.monotonic() - started, 1),
        }
    arguments.results.mkdir(parents=True, exist_ok=True)
    name = "quick" if quick else "latest"
    (arguments.results / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (arguments.results / f"{name}.md").write_text(markdown(report))
    if not quick:
        with (arguments.results / "history.jsonl").open("a") as history:
            history.write(json.dumps({k: report[k] for k in ("date", "machine", "rows")}) + "\n")
    sys.stdout.write(markdown(report))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchFailure as failure:
        print(f"bench: {failure}", file=sys.stderr)
        sys.exit(1)
