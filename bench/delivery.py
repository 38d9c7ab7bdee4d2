"""Ordered delivery throughput: files/s of a ``concurrency: 1`` directory sink.

Two measurements, each in a fresh data directory on the default SQLite store (or ``--store``):

- ``backlog``: N events stored at once (as ``reconcile`` or an ERP outage leaves them), then the
  delivery worker alone drains them; files/s from the first claim to the last file.
- ``ingest``: ``tcwebhook serve`` with the sink, POSTed to at a fixed rate over TLS for a fixed
  time; events/s stored and files/s written meanwhile, and whether the backlog kept level.

Prints one JSON object. ``bench/run`` calls it for its delivery cell; run it alone while working
on the worker: ``python bench/delivery.py backlog --events 20000``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))  # measure this tree, whatever tcwebhook is installed elsewhere

import orjson  # noqa: E402

from tcwebhook import samples  # noqa: E402
from tcwebhook.config import Settings, SinkSettings, StoreSettings  # noqa: E402
from tcwebhook.delivery.routing import task_router  # noqa: E402
from tcwebhook.delivery.worker import DeliveryWorker  # noqa: E402
from tcwebhook.events import parse_webhook  # noqa: E402
from tcwebhook.replay.edit import refresh_message_id  # noqa: E402
from tcwebhook.store import NewEvent, Store, open_store, utc_now  # noqa: E402

SINK = "outbox"
FILL_BATCH = 1000  # events stored per transaction when filling a backlog


def _body(number: int) -> bytes:
    """An order-issued webhook with a fresh message id, its own order and order number."""
    body = samples.get_sample("order-issued").body
    refresh_message_id(body)
    body["orderEvent"]["orderId"] = f"bench-order-{number:09d}"
    body["orderEvent"]["buyerOrder"]["purchaseOrderNumber"] = f"PO{number:09d}"
    return orjson.dumps(body)


def _settings(data_dir: Path, store_url: str | None) -> Settings:
    sink = SinkSettings(name=SINK, type="directory", path=data_dir / "outbox")
    return Settings(data_dir=data_dir, sinks=(sink,), store=StoreSettings(url=store_url))


def fill(store: Store, settings: Settings, count: int) -> None:
    """Store ``count`` events with their delivery tasks, ``FILL_BATCH`` per transaction."""
    route = task_router(settings)
    for start in range(0, count, FILL_BATCH):
        batch = []
        for number in range(start, min(start + FILL_BATCH, count)):
            body = _body(number)
            event = parse_webhook(body)
            batch.append(
                NewEvent(
                    received_at=utc_now(),
                    kind=event.kind.value,
                    event_name=event.event_name,
                    message_id=event.message_id,
                    dedup_key=f"m:{event.message_id}",
                    resource_id=event.resource_id,
                    number=event.number,
                    changed_lines=event.changed_lines,
                    method="POST",
                    path="/tradecloud/order",
                    headers={},
                    body=body,
                    tasks=route(event),
                    change_key=f"bench:{number}",
                )
            )
        store.append_recovered(batch)


async def _drain(store: Store, settings: Settings, count: int) -> float:
    """Run the worker as ``serve`` does until ``count`` deliveries are done; seconds taken."""
    done = 0
    finished = asyncio.Event()

    def listener(policy: Any, task: Any, state: str, error: str | None) -> None:
        nonlocal done
        if state == "done":
            done += 1
            if done >= count:
                finished.set()

    worker = DeliveryWorker(store, settings, listener)
    started = time.perf_counter()
    running = asyncio.create_task(worker.run())
    worker.wake()
    await finished.wait()
    elapsed = time.perf_counter() - started
    worker.stop()
    await running
    return elapsed


def backlog(count: int, store_url: str | None, scratch: Path) -> dict[str, Any]:
    settings = _settings(scratch, store_url)
    store = open_store(settings.store_url)
    try:
        started = time.perf_counter()
        fill(store, settings, count)
        filled = time.perf_counter() - started
        seconds = asyncio.run(_drain(store, settings, count))
    finally:
        store.close()
    files = sum(1 for _ in os.scandir(scratch / "outbox"))
    if files != count:
        raise SystemExit(f"bench: {count} deliveries recorded but {files} files written")
    return {
        "events": count,
        "fill_s": round(filled, 1),
        "drain_s": round(seconds, 2),
        "files_per_s": round(count / seconds, 1),
    }


# ------------------------------------------------------------------------------------------
# Ingest at a fixed rate while the sink delivers


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"bench: serve exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"bench: serve did not listen on port {port} within {timeout:.0f} s")


async def _post_at_rate(
    port: int, token: str, ca: Path, rate: float, seconds: float, connections: int
) -> tuple[int, int]:
    """POST new events at ``rate`` per second for ``seconds``; (answered 2xx, others)."""
    import aiohttp

    context = ssl.create_default_context(cafile=str(ca))
    url = f"https://localhost:{port}/tradecloud/order"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=connections * 4)
    counts = [0, 0]

    async def sender(session: aiohttp.ClientSession) -> None:
        while (body := await queue.get()) is not None:
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    counts[0 if response.status == 200 else 1] += 1
            except (aiohttp.ClientError, TimeoutError):
                counts[1] += 1

    connector = aiohttp.TCPConnector(ssl=context, limit=connections)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        senders = [asyncio.create_task(sender(session)) for _ in range(connections)]
        started = time.perf_counter()
        total = int(rate * seconds)
        for number in range(total):
            # A fixed schedule: a slow answer delays later requests, never thins them out.
            delay = started + number / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await queue.put(_body(10_000_000 + number))
        for _ in senders:
            await queue.put(None)
        await asyncio.gather(*senders)
    return counts[0], counts[1]


def _files(outbox: Path) -> int:
    if not outbox.exists():
        return 0
    return sum(1 for entry in os.scandir(outbox) if not entry.name.startswith("."))


def ingest(
    rate: float, seconds: float, connections: int, store_url: str | None, scratch: Path
) -> dict[str, Any]:
    from tcwebhook.auth.static import dev_token
    from tcwebhook.server.tls import dev_certificates

    data_dir = scratch / "serve"
    data_dir.mkdir()
    certificates = dev_certificates(data_dir)
    token = dev_token(data_dir)
    outbox = data_dir / "outbox"
    config = data_dir / "tcwebhook.yaml"
    config.write_text(f"sinks:\n  - name: {SINK}\n    type: directory\n    path: {outbox}\n")
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), TCWEBHOOK_DATA_DIR=str(data_dir))
    if store_url:
        env["TCWEBHOOK_STORE_URL"] = store_url
    command = [sys.executable, "-m", "tcwebhook", "serve", "--port", str(port)]
    command += ["--log-format", "json", "--config", str(config)]
    with (data_dir / "server.log").open("wb") as log:
        process = subprocess.Popen(
            command, env=env, cwd=data_dir, stdout=subprocess.DEVNULL, stderr=log,
            start_new_session=True,
        )  # fmt: skip
    try:
        _wait_listening(port, process)
        files_before = _files(outbox)
        started = time.perf_counter()
        answered, others = asyncio.run(
            _post_at_rate(port, token, certificates.ca, rate, seconds, connections)
        )
        elapsed = time.perf_counter() - started
        files_during = _files(outbox) - files_before
        # Then let the backlog drain (bounded), to see that nothing is left behind.
        deadline = time.monotonic() + max(30.0, seconds * 3)
        while _files(outbox) < answered and time.monotonic() < deadline:
            time.sleep(0.25)
        drained_s = time.perf_counter() - started - elapsed
        files_after = _files(outbox)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    return {
        "target_rate": rate,
        "seconds": round(elapsed, 1),
        "ingest_per_s": round(answered / elapsed, 1),
        "non_2xx": others,
        "files_per_s": round(files_during / elapsed, 1),
        "behind_at_end": answered - files_during,
        "files_after": files_after,
        "catch_up_s": round(drained_s, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("backlog", "ingest"))
    parser.add_argument("--events", type=int, default=100_000, help="backlog: events to drain")
    parser.add_argument("--rate", type=float, default=400.0, help="ingest: POSTs per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="ingest: how long")
    parser.add_argument("--connections", type=int, default=8, help="ingest: at most in flight")
    parser.add_argument("--store", help="store URL (default: SQLite in the scratch directory)")
    arguments = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="tcwebhook-bench-delivery-"))
    try:
        if arguments.mode == "backlog":
            result = backlog(arguments.events, arguments.store, scratch)
        else:
            result = ingest(
                arguments.rate, arguments.seconds, arguments.connections, arguments.store, scratch
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
