"""The real ``tcwebhook serve`` in a subprocess, and webhooks to send it."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import ssl
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import orjson

from tests.helpers.paths import REPOSITORY, SAMPLES

TEMPLATE = orjson.loads((SAMPLES / "order-event.json").read_bytes())
PORT_0 = ("--port", "0")


def start_server(
    data_dir: Path,
    *args: str,
    env: dict[str, str] | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start the real command, wait for its ready line; return it and the order URL.

    Its stdout and stderr go to one file: ``server_log(process)``.
    """
    # This checkout's code, whichever copy of tcwebhook the environment has installed.
    env = {
        **os.environ,
        "TCWEBHOOK_DATA_DIR": str(data_dir),
        "PYTHONPATH": str(REPOSITORY),
        **(env or {}),
    }
    log = data_dir.parent / f"serve-{time.monotonic_ns()}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tcwebhook",
                "serve",
                "--log-format",
                "json",
                *(args or PORT_0),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=preexec_fn,
        )
    _LOGS[process.pid] = log
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        first = log.read_bytes().split(b"\n", 1)
        if len(first) == 2:
            return process, orjson.loads(first[0])["order_url"]
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    process.wait()
    raise AssertionError(f"serve did not start: {log.read_text()}")


_LOGS: dict[int, Path] = {}


def server_log(process: subprocess.Popen[bytes]) -> bytes:
    """Everything ``process`` (from ``start_server``) wrote so far."""
    return _LOGS[process.pid].read_bytes()


def body(message_id: str) -> bytes:
    event = dict(TEMPLATE)
    event["meta"] = {**TEMPLATE["meta"], "messageId": message_id}
    return orjson.dumps(event)


@contextlib.contextmanager
def client_of_a_killed_server() -> Iterator[None]:
    """Around a test's client while the server it talks to is SIGKILLed under load.

    Rarely, the client (aiohttp over asyncio's TLS) never closes its transport of a connection
    the killed server took down, and the ResourceWarning, an error in this suite, failed the test
    when the object was collected. That socket belongs to the test's own client, not to the server
    under test: its "unclosed" warning is ignored here, and garbage is collected before leaving so
    that none is left to fail a later test.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "unclosed", ResourceWarning)
        try:
            yield
        finally:
            gc.collect()


async def send_all(
    url: str, token: str, ca: Path, ids: list[str], kill: subprocess.Popen[bytes] | None = None
) -> set[str]:
    """POST every id concurrently; SIGKILL ``kill`` after a third were acknowledged."""
    context = ssl.create_default_context(cafile=str(ca))
    acknowledged: set[str] = set()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(ssl=context, limit=64)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post(message_id: str) -> None:
            try:
                async with session.post(url, data=body(message_id), headers=headers) as response:
                    if 200 <= response.status < 300:
                        acknowledged.add(message_id)
                        if kill is not None and len(acknowledged) == len(ids) // 3:
                            kill.send_signal(signal.SIGKILL)
            except (aiohttp.ClientError, OSError):
                pass  # in flight when the server died: Tradecloud would retry it

        await asyncio.gather(*(post(message_id) for message_id in ids))
    return acknowledged
