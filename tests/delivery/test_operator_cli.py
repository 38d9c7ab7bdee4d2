"""The operator's commands: status, deliver --once, events retry/export/purge/replay."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from tcwebhook import samples
from tcwebhook.store import open_store
from tests.helpers.cli import in_process
from tests.helpers.outbox import make_settings, sink, store_body, with_message_id

pytestmark = pytest.mark.usefixtures("store_backend")  # every command on both backends


def tcwebhook(*args: str) -> subprocess.CompletedProcess[str]:
    # The real command in this process: an interpreter per call cost seconds on a busy machine.
    return in_process(*args)


def setup_outbox(tmp_path: Path, events: int = 3) -> tuple[Path, Path, list[int]]:
    """A config with a directory sink whose target is blocked by a file, and stored events."""
    outbox = tmp_path / "outbox"
    config = tmp_path / "tcwebhook.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        "sinks:\n"
        f"  - {{name: files, type: directory, path: {outbox}, "
        "retry: {max_attempts: 1, base_delay: 0.01, max_delay: 0.01}}\n"
    )
    from tcwebhook.config import load_settings

    settings = load_settings(config)
    store = open_store(settings.store_url)
    body = samples.get_sample("order-issued").body
    ids = [store_body(store, settings, with_message_id(body, f"m-{n}")) for n in range(events)]
    store.close()
    return config, outbox, ids


def test_status_deliver_once_and_retry_dead(tmp_path: Path) -> None:
    config, outbox, ids = setup_outbox(tmp_path)
    report = json.loads(tcwebhook("status", "--json", "--config", str(config)).stdout)
    assert report["deliveries"] == {"files": {"pending": 3}}
    assert report["events"] == {"order": 3}

    outbox.write_text("blocking file")  # the sink is broken: attempts die at once
    result = tcwebhook("deliver", "--once", "--config", str(config))
    assert result.returncode == 0
    assert "event #" in result.stdout and "dead" in result.stdout
    status = tcwebhook("status", "--json", "--config", str(config))
    report = json.loads(status.stdout)
    assert status.returncode == 1 and not report["healthy"] and report["dead"] == 3
    assert "retry --dead" in report["problems"][0]
    listed = json.loads(
        tcwebhook("events", "list", "--state", "dead", "--json", "--config", str(config)).stdout
    )
    assert [item["id"] for item in listed] == ids[::-1]  # a dead event no longer holds back others
    assert listed[0]["tasks"] == [{"target": "files", "state": "dead"}]
    shown = json.loads(
        tcwebhook("events", "show", str(ids[0]), "--json", "--config", str(config)).stdout
    )
    assert (
        "cannot write to" in shown["tasks"][0]["last_error"] and shown["tasks"][0]["attempts"] == 1
    )

    outbox.unlink()  # fixed
    retried = tcwebhook("events", "retry", "--dead", "--config", str(config))
    assert retried.returncode == 0 and "3 delivery(ies) re-queued" in retried.stderr
    assert tcwebhook("deliver", "--once", "--config", str(config)).returncode == 0
    status = tcwebhook("status", "--json", "--config", str(config))
    assert status.returncode == 0
    assert json.loads(status.stdout)["deliveries"] == {"files": {"done": 3}}
    assert len(list(outbox.glob("*.json"))) == 3


@pytest.mark.parametrize("store_backend", ["sqlite"], indirect=True)  # no store involved
def test_retry_needs_an_id_or_dead(tmp_path: Path) -> None:
    config, _, _ = setup_outbox(tmp_path, events=1)
    result = tcwebhook("events", "retry", "--config", str(config))
    assert result.returncode == 2 and "give either an event id or --dead" in result.stderr
    missing = tcwebhook("events", "retry", "99", "--config", str(config))
    assert missing.returncode == 1 and "no event with id 99" in missing.stderr


def test_export_and_purge(tmp_path: Path) -> None:
    config, _, ids = setup_outbox(tmp_path)
    lines = tcwebhook("events", "export", "--config", str(config)).stdout.splitlines()
    exported = [orjson.loads(line) for line in lines]
    assert [item["id"] for item in exported] == ids
    assert exported[0]["payload"]["eventName"] == "OrderIssuedByBuyer"
    assert (
        tcwebhook("events", "export", "--since", "2999-01-01", "--config", str(config)).stdout == ""
    )
    bad = tcwebhook("events", "export", "--since", "last tuesday", "--config", str(config))
    assert bad.returncode == 2 and "neither a timestamp nor a duration" in bad.stderr

    # Undelivered events survive a purge unless forced.
    kept = tcwebhook("events", "purge", "--before", "2999-01-01", "--config", str(config))
    assert "0 event(s) deleted" in kept.stderr
    tcwebhook("deliver", "--once", "--config", str(config))
    done = tcwebhook("events", "purge", "--before", "2999-01-01", "--config", str(config))
    assert "3 event(s) deleted" in done.stderr
    assert tcwebhook("events", "list", "--json", "--config", str(config)).stdout.strip() == "[]"


async def test_events_replay_resends_the_original_bytes(
    tmp_path: Path, aiohttp_server: Any, server_ssl_ctx: Any, tls_ca: Any
) -> None:
    import asyncio

    received: list[tuple[bytes, str | None]] = []

    async def handle(request: web.Request) -> web.Response:
        received.append((await request.read(), request.headers.get("Authorization")))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", handle)
    server = await aiohttp_server(app, ssl=server_ssl_ctx)
    ca = tmp_path / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(ca))
    settings = make_settings(tmp_path, sink("files", "directory", path=tmp_path / "o"))
    store = open_store(settings.store_url)
    original = b'{"eventName":"OrderIssuedByBuyer",  "orderEvent": {"orderId": "x"}}'
    event_id = store_body(store, settings, original)
    store.close()
    url = f"https://127.0.0.1:{server.port}/hook"
    result = await asyncio.to_thread(
        tcwebhook,
        "events",
        "replay",
        str(event_id),
        "--url",
        url,
        "--token",
        "t0k",
        "--ca-file",
        str(ca),
    )
    assert result.returncode == 0, result.stderr
    assert received == [(original, "Bearer t0k")]
    assert "t0k" not in result.stdout + result.stderr
