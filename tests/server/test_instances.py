"""Several real ``serve`` processes on one PostgreSQL store: dedup across instances, one
instance killed under load, delivery from both, strict order, and PostgreSQL itself stopped."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import aiohttp
import orjson
import pytest

from tcwebhook.datadir import DEV_CA_FILE
from tcwebhook.store import open_store
from tests.helpers.pg import PostgresServer
from tests.helpers.serve import REPOSITORY, TEMPLATE, client_of_a_killed_server, start_server

EVENTS = 2000  # 10 % go to both instances
ORDERED = 12  # events sent one at a time, alternating instances, to the strict-order sink
ORDERED_NAME = "OrderLinesConfirmedBySupplier"


def body(message_id: str, event_name: str | None = None) -> bytes:
    event = dict(TEMPLATE)
    event["meta"] = {**TEMPLATE["meta"], "messageId": message_id}
    if event_name:
        event["eventName"] = event_name
    return orjson.dumps(event)


def write_config(tmp_path: Path) -> Path:
    config = tmp_path / "tcwebhook.yaml"
    ordered = tmp_path / "ordered.txt"
    command = f"cat > /dev/null && echo $TCWEBHOOK_MESSAGE_ID >> {ordered}"
    config.write_text(
        f"""
sinks:
  - name: files
    type: directory
    path: {tmp_path / "outbox"}
    concurrency: 8
  - name: ordered
    type: command
    events: ["{ORDERED_NAME}"]
    run: ["sh", "-c", "{command}"]
"""
    )
    return config


class Client:
    """POSTs to the instances; remembers every acknowledged messageId and every status."""

    def __init__(self, token: str, ca: Path) -> None:
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.context = ssl.create_default_context(cafile=str(ca))
        self.acknowledged: set[str] = set()
        self.statuses: Counter[int] = Counter()
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Client:
        connector = aiohttp.TCPConnector(ssl=self.context, limit=64)
        timeout = aiohttp.ClientTimeout(total=20)
        self.session = aiohttp.ClientSession(connector=connector, timeout=timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.session is not None
        await self.session.close()

    async def post(self, url: str, message_id: str, event_name: str | None = None) -> int:
        assert self.session is not None
        try:
            async with self.session.post(
                url, data=body(message_id, event_name), headers=self.headers
            ) as response:
                await response.read()
                self.statuses[response.status] += 1
                if 200 <= response.status < 300:
                    self.acknowledged.add(message_id)
                return response.status
        except (aiohttp.ClientError, OSError, TimeoutError):
            return 0  # in flight when the instance died: Tradecloud would retry it


def start_instances(tmp_path: Path, count: int) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    """``count`` serve processes sharing the data dir (dev CA, token) and the store."""
    config = write_config(tmp_path)
    data_dir = tmp_path / "data"
    processes, urls = [], []
    for _ in range(count):  # one after the other: the first creates the CA and token
        process, url = start_server(data_dir, "--config", str(config), "--port", "0")
        processes.append(process)
        urls.append(url)
    return processes, urls


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def tcwebhook(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TCWEBHOOK_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(REPOSITORY),
    }
    config = tmp_path / "tcwebhook.yaml"
    return subprocess.run(
        [sys.executable, "-m", "tcwebhook", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_two_instances_share_one_store(
    tmp_path: Path, postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres.new_schema()
    monkeypatch.setenv("TCWEBHOOK_STORE_URL", url)  # the instances and the commands use it
    processes, urls = start_instances(tmp_path, 2)
    data_dir = tmp_path / "data"
    token = (data_dir / "token").read_text().strip()
    ids = [str(uuid.uuid4()) for _ in range(EVENTS)]
    both = set(ids[:: EVENTS // (EVENTS // 10)])  # 10 %: sent to both instances at once
    ordered = [f"ordered-{n}" for n in range(ORDERED)]

    async def scenario() -> tuple[Client, list[int]]:
        async with Client(token, data_dir / DEV_CA_FILE) as client:
            # Strict order: one at a time, alternating instances, before the load.
            for n, message_id in enumerate(ordered):
                assert await client.post(urls[n % 2], message_id, ORDERED_NAME) == 200
            limit = asyncio.Semaphore(48)
            killed_at = len(ids) // 2
            after_kill: list[int] = []

            async def send(index: int, message_id: str) -> None:
                async with limit:
                    targets = urls if message_id in both else [urls[index % 2]]
                    if index == killed_at:
                        processes[1].send_signal(signal.SIGKILL)
                    statuses = await asyncio.gather(*(client.post(u, message_id) for u in targets))
                    if index > killed_at + 64:  # well after the kill: the survivor answers
                        after_kill.extend(
                            s for u, s in zip(targets, statuses, strict=True) if u == urls[0]
                        )

            await asyncio.wait_for(
                asyncio.gather(*(send(i, m) for i, m in enumerate(ids))), timeout=90
            )
            return client, after_kill

    try:
        with client_of_a_killed_server():
            client, after_kill = asyncio.run(scenario())
        assert processes[1].wait(timeout=10) == -signal.SIGKILL
        assert after_kill and set(after_kill) == {200}  # the survivor kept answering
        assert 500 not in client.statuses

        store = open_store(url)
        try:
            events = list(store.iter_events())
            stored = Counter(event.message_id for event in events)
            assert client.acknowledged <= set(stored)  # every 2xx was committed
            assert max(stored.values()) == 1  # each stored once, even when sent to both
            assert set(ordered) <= set(stored)

            # Claims of the killed instance are released by the next worker on this host;
            # then everything reaches the directory sink, once per event.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                report = json.loads(tcwebhook(tmp_path, "status", "--json").stdout)
                files = report["deliveries"].get("files", {})
                if files.get("done") == len(events) and report["deliveries"]["ordered"].get(
                    "done"
                ) == len(ordered):
                    break
                if files.get("running"):
                    tcwebhook(tmp_path, "deliver", "--once")
                time.sleep(0.3)
            assert files.get("done") == len(events), report
            delivered = list((tmp_path / "outbox").iterdir())
            assert len(delivered) == len(events)
            # The strict-order command sink saw the ordered events as they were acknowledged.
            lines = (tmp_path / "ordered.txt").read_text().split()
            assert lines == ordered
        finally:
            store.close()
    finally:
        stop(processes)


def test_postgres_stopped_under_load_gives_503_then_recovers(
    tmp_path: Path, postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres.new_schema()
    monkeypatch.setenv("TCWEBHOOK_STORE_URL", url)
    processes, urls = start_instances(tmp_path, 1)
    data_dir = tmp_path / "data"
    token = (data_dir / "token").read_text().strip()

    async def scenario() -> tuple[Client, list[int], list[int]]:
        async with Client(token, data_dir / DEV_CA_FILE) as client:
            loading = True

            async def load(worker: int) -> None:  # keeps requests in flight throughout
                n = 0
                while loading and n < 2000:
                    await client.post(urls[0], f"load-{worker}-{n}")
                    n += 1

            loaders = [asyncio.create_task(load(worker)) for worker in range(4)]
            await asyncio.sleep(0.5)
            await asyncio.to_thread(postgres.stop, "fast")  # under load
            during = list(
                await asyncio.gather(*(client.post(urls[0], f"down-{n}") for n in range(40)))
            )
            await asyncio.to_thread(postgres.start)
            after: list[int] = []
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # recovers without restarting serve
                status = await client.post(urls[0], f"after-{len(after)}")
                after.append(status)
                if status == 200:
                    break
                await asyncio.sleep(0.2)
            loading = False
            await asyncio.gather(*loaders)
            return client, during, after

    try:
        client, during, after = asyncio.run(scenario())
        assert during and set(during) == {503}  # PostgreSQL down: retry later, never 500
        assert after[-1] == 200
        assert 500 not in client.statuses and set(client.statuses) <= {200, 503}
        assert processes[0].poll() is None
        store = open_store(url)
        try:
            stored = {event.message_id for event in store.iter_events()}
        finally:
            store.close()
        assert client.acknowledged <= stored
    finally:
        stop(processes)
