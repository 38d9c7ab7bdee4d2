"""Sinks on an unlucky day: stuck children, odd payloads, secrets, a store that fails to record."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from tcwebhook import samples
from tcwebhook.config import RetrySettings
from tcwebhook.delivery.status import outbox_status
from tcwebhook.delivery.worker import DeliveryWorker
from tcwebhook.store import NewEvent, SqliteStore, utc_now
from tests.helpers.outbox import (
    make_settings,
    open_for,
    sink,
    store_body,
    store_notification,
    with_message_id,
)

ORDER = samples.get_sample("order-issued").body


def gone(pid: int) -> bool:
    """The process has ended (a zombie waiting for its reaper counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return True
    return state in ("Z", "X")


def wait_for(condition: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def child_script(pid_file: Path) -> tuple[str, ...]:
    """A command that starts a child holding its output open, then waits for it."""
    return ("/bin/sh", "-c", f"sleep 1000 & echo $! > {pid_file}; wait")


async def test_a_timeout_kills_the_whole_process_group(tmp_path: Path, stores: list) -> None:
    pid_file = tmp_path / "child.pid"
    later = RetrySettings(max_attempts=5, base_delay=60, max_delay=60)
    slow = sink("slow", "command", run=child_script(pid_file), timeout=0.5, retry=later)
    settings = make_settings(tmp_path, slow)
    store = open_for(settings, stores)
    event_id = store_body(store, settings, orjson.dumps(ORDER))
    started = time.monotonic()
    await asyncio.wait_for(DeliveryWorker(store, settings).drain(), 10)
    assert time.monotonic() - started < 5
    task = store.get_event(event_id).tasks[0]
    assert (task.state, task.attempts) == ("failed", 1)
    assert "did not finish within 0.5 s" in (task.last_error or "")
    assert wait_for(lambda: gone(int(pid_file.read_text())), 3)


def slow_command_setup(tmp_path: Path, pid_file: Path) -> tuple[Path, str, int]:
    """A config whose command sink starts a child and waits for it, and one stored event:
    the config, the store's URL and the event id."""
    from tcwebhook.config import load_settings
    from tcwebhook.store import open_store

    config = tmp_path / "tcwebhook.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        "sinks:\n"
        f"  - {{name: erp, type: command, run: {json.dumps(child_script(pid_file))}, "
        "timeout: 60}\n"
    )
    settings = load_settings(config)
    store = open_store(settings.store_url)
    event_id = store_body(store, settings, orjson.dumps(ORDER))
    store.close()
    return config, settings.store_url, event_id


def test_deliver_stops_promptly_on_sigterm_and_kills_the_command(tmp_path: Path) -> None:
    from tcwebhook.store import open_store

    pid_file = tmp_path / "child.pid"
    config, store_url, event_id = slow_command_setup(tmp_path, pid_file)
    process = subprocess.Popen(
        [sys.executable, "-m", "tcwebhook", "deliver", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), 15)
        child = int(pid_file.read_text())
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        _, errors = process.communicate(timeout=10)
        assert time.monotonic() - started < 5
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, errors
    assert wait_for(lambda: gone(child), 3)
    store = open_store(store_url)
    task = store.get_event(event_id).tasks[0]
    store.close()
    assert (task.state, task.attempts) == ("pending", 0)  # cut short: does not count


async def test_command_environment_is_minimal_and_bounded(
    tmp_path: Path, stores: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_TOKEN", "s3cr3t")
    monkeypatch.setenv("ERP_HOST", "erp.internal")
    seen = tmp_path / "env.json"
    script = f"import json, os; open({str(seen)!r}, 'w').write(json.dumps(dict(os.environ)))"
    erp = sink(
        "erp",
        "command",
        run=(sys.executable, "-c", script),
        pass_env=("ERP_HOST",),
        env={"ERP_USER": "importer"},
    )
    settings = make_settings(tmp_path, erp)
    store = open_for(settings, stores)
    huge_id = "m" * 2_000_000  # more than the kernel lets a program's environment hold
    event_id = store_body(store, settings, with_message_id(ORDER, huge_id))
    await DeliveryWorker(store, settings).drain()
    assert store.get_event(event_id).tasks[0].state == "done"
    environment = json.loads(seen.read_text())
    assert "SECRET_TOKEN" not in environment
    assert environment["ERP_HOST"] == "erp.internal"
    assert environment["ERP_USER"] == "importer"
    assert environment["PATH"] == os.environ["PATH"]
    assert environment["TCWEBHOOK_MESSAGE_ID"] == huge_id[:1024]
    assert environment["TCWEBHOOK_EVENT_ID"] == str(event_id)


async def test_envelope_carries_a_deeply_nested_payload(tmp_path: Path, stores: list) -> None:
    outbox = tmp_path / "outbox"
    settings = make_settings(tmp_path, sink("files", "directory", path=outbox, content="envelope"))
    store = open_for(settings, stores)
    body = b'{"eventName": "OrderIssuedByBuyer", "deep": ' + b"[" * 600 + b"]" * 600 + b"}"
    event = NewEvent(
        received_at=utc_now(),
        kind="order",
        event_name="OrderIssuedByBuyer",
        message_id="m-deep",
        dedup_key="m:m-deep",
        resource_id="o-1",
        number="PO1",
        changed_lines=(),
        method="POST",
        path="/tradecloud/order",
        headers={},
        body=body,
        tasks=("files",),
    )
    event_id = store.append_sync(event).id
    await DeliveryWorker(store, settings).drain()
    assert store.get_event(event_id).tasks[0].state == "done"
    (written,) = outbox.glob("*.json")
    envelope = json.loads(written.read_bytes())
    assert envelope["payload"] == json.loads(body) and envelope["id"] == event_id


async def test_a_failing_fetch_holds_back_later_events_of_an_ordered_sink(
    tmp_path: Path, stores: list
) -> None:
    outbox = tmp_path / "outbox"
    settings = make_settings(
        tmp_path,
        sink("files", "directory", path=outbox),
        base_url="https://127.0.0.1:9/v2",  # nothing listens: the fetch fails
    )
    store = open_for(settings, stores)
    notification = store_notification(store, settings, "order", "o-1")
    later = store_body(store, settings, orjson.dumps(ORDER))
    await DeliveryWorker(store, settings).drain()
    assert {t.target: t.state for t in store.get_event(notification).tasks}["@fetch"] == "failed"
    assert store.get_event(later).tasks[0].state == "pending"
    assert not outbox.exists()


async def test_outcomes_are_recorded_once_the_store_recovers(
    tmp_path: Path, stores: list, caplog: pytest.LogCaptureFixture
) -> None:
    started = tmp_path / "started"
    script = f"import pathlib, time; pathlib.Path({str(started)!r}).touch(); time.sleep(0.3)"
    settings = make_settings(tmp_path, sink("erp", "command", run=(sys.executable, "-c", script)))
    store = SqliteStore(settings.data_dir / "events.db", busy_timeout=0.1)
    stores.append(store)
    event_id = store_body(store, settings, orjson.dumps(ORDER))
    worker = DeliveryWorker(store, settings)
    running = asyncio.create_task(worker.run())
    try:
        for _ in range(200):
            if started.exists():
                break
            await asyncio.sleep(0.02)
        blocker = sqlite3.connect(store.path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # the outcome cannot be recorded for a while
        await asyncio.sleep(1.0)
        assert store.get_event(event_id).tasks[0].state == "running"
        blocker.execute("ROLLBACK")
        blocker.close()
        for _ in range(100):
            if store.get_event(event_id).tasks[0].state == "done":
                break
            await asyncio.sleep(0.05)
    finally:
        worker.stop()
        await running
    task = store.get_event(event_id).tasks[0]
    assert (task.state, task.attempts) == ("done", 1)  # not left to the lease
    assert "could not record" in caplog.text


async def test_status_reports_a_sink_that_keeps_failing(tmp_path: Path, stores: list) -> None:
    retry = RetrySettings(max_attempts=10, base_delay=60, max_delay=60)
    settings = make_settings(tmp_path, sink("files", "directory", path=tmp_path / "x", retry=retry))
    store = open_for(settings, stores)
    (tmp_path / "x").write_text("a file where the directory should be")
    first = store_body(store, settings, with_message_id(ORDER, "m-1"))
    store_body(store, settings, with_message_id(ORDER, "m-2"))
    await DeliveryWorker(store, settings).drain()
    report = outbox_status(store, max_pending_age=3600, max_failing_age=0)
    assert not report["healthy"] and report["failing"] == ["files"]
    assert f"event #{first}" in report["problems"][0] and "cannot write" in report["problems"][0]
    assert outbox_status(store, 3600, 300)["healthy"]  # it has not failed for long yet


def test_serve_stops_promptly_on_sigterm_with_a_command_under_way(tmp_path: Path) -> None:
    from tests.helpers.serve import start_server

    pid_file = tmp_path / "child.pid"
    config, _, _ = slow_command_setup(tmp_path, pid_file)
    process, _ = start_server(tmp_path / "data", "--config", str(config), "--port", "0")
    try:
        assert wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), 15)
        child = int(pid_file.read_text())
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        process.wait(timeout=20)
        # Not the command's own minutes: killed at once (a loaded machine may take seconds to
        # stop serve itself).
        assert time.monotonic() - started < 10
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert wait_for(lambda: gone(child), 3)
