"""A sink held back by an earlier event says which one and why: status (text and JSON), events
show of a held-back event, and the inspector's status page; on both store backends."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tcwebhook import samples
from tcwebhook.config import RetrySettings
from tcwebhook.delivery.status import outbox_status
from tcwebhook.delivery.worker import DeliveryWorker
from tcwebhook.store import Store
from tests.helpers.outbox import (
    make_settings,
    open_for,
    sink,
    store_body,
    store_notification,
    with_message_id,
)

pytestmark = pytest.mark.usefixtures("store_backend")

SLOW_RETRY = RetrySettings(max_attempts=10, base_delay=600, max_delay=600)
# Markup a sender controls, in the Tradecloud id: shown as text everywhere.
ORDER_ID = "o-<b>held</b>[red]"


def tcwebhook(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tcwebhook", *args], capture_output=True, text=True, timeout=60
    )


def write_config(tmp_path: Path, concurrency: int = 1) -> Path:
    config = tmp_path / "tcwebhook.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        "sinks:\n"
        f"  - {{name: erp, type: directory, path: {tmp_path / 'outbox'}, "
        f"concurrency: {concurrency}, "
        "retry: {max_attempts: 10, base_delay: 600, max_delay: 600}}\n"
    )
    return config


async def held_back_by_a_fetch(
    tmp_path: Path, stores: list[Store], concurrency: int = 1
) -> tuple[Store, int, list[int]]:
    """A GET notification whose @fetch fails (no API credentials), then two POST orders on the
    same sink: the worker has tried once."""
    settings = make_settings(
        tmp_path,
        sink("erp", "directory", path=tmp_path / "outbox", retry=SLOW_RETRY),
        fetch_retry=SLOW_RETRY,
    )
    store = open_for(settings, stores)
    notification = store_notification(store, settings, "order", ORDER_ID)
    body = samples.get_sample("order-issued").body
    later = [store_body(store, settings, with_message_id(body, f"m-{n}")) for n in range(2)]
    await DeliveryWorker(store, settings).drain()
    return store, notification, later


@pytest.fixture(autouse=True)
def no_api_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRADECLOUD_USERNAME", raising=False)
    monkeypatch.delenv("TRADECLOUD_PASSWORD", raising=False)


async def test_status_names_the_event_holding_back_an_ordered_sink(
    tmp_path: Path, stores: list[Store]
) -> None:
    store, notification, later = await held_back_by_a_fetch(tmp_path, stores)
    event = store.get_event(later[0])
    assert [(t.target, t.state, t.attempts) for t in event.tasks] == [("erp", "pending", 0)]

    report = outbox_status(store, 3600, 300, ordered={"erp"})
    assert report["healthy"], "not failing for long yet"
    [blocked] = report["blocked"]
    assert blocked["target"] == "erp" and blocked["event_id"] == notification
    assert (blocked["kind"], blocked["resource_id"]) == ("order_notification", ORDER_ID)
    assert blocked["waiting_for"] == "@fetch" and blocked["attempts"] == 1
    assert "credentials" in blocked["last_error"].lower()
    assert blocked["behind"] == 2

    aged = outbox_status(store, 3600, 0, ordered={"erp"})
    assert not aged["healthy"] and aged["failing"] == ["@fetch", "erp"]
    [problem] = [p for p in aged["problems"] if p.startswith("erp")]
    for fact in (f"event #{notification}", "order_notification", ORDER_ID, "@fetch"):
        assert fact in problem
    assert blocked["last_error"][:100] in problem


async def test_status_cli_text_and_json(tmp_path: Path, stores: list[Store]) -> None:
    _, notification, _ = await held_back_by_a_fetch(tmp_path, stores)
    config = str(write_config(tmp_path))
    result = tcwebhook("status", "--json", "--config", config)
    assert result.returncode == 0, result.stderr
    [blocked] = json.loads(result.stdout)["blocked"]
    assert (blocked["event_id"], blocked["waiting_for"]) == (notification, "@fetch")

    text = tcwebhook("status", "--config", config)
    assert text.returncode == 0, text.stderr
    line = next(line for line in text.stdout.splitlines() if "held back" in line)
    assert f"erp is held back by event #{notification} (order_notification, " in line
    assert ORDER_ID in text.stdout and "credentials" in text.stdout.lower()

    aged = tcwebhook("status", "--max-failing-age", "0", "--config", config)
    assert aged.returncode == 1
    assert f"event #{notification}" in aged.stderr and "@fetch" in aged.stderr


async def test_events_show_of_a_held_back_event(tmp_path: Path, stores: list[Store]) -> None:
    _, notification, later = await held_back_by_a_fetch(tmp_path, stores)
    config = str(write_config(tmp_path))
    shown = tcwebhook("events", "show", str(later[1]), "--config", config)
    assert shown.returncode == 0, shown.stderr
    assert "pending, 0 attempt(s)" in shown.stdout
    assert f"held back by event #{notification}" in " ".join(shown.stdout.split())
    as_json = json.loads(
        tcwebhook("events", "show", str(later[1]), "--json", "--config", config).stdout
    )
    held = as_json["held_back_by"]["erp"]
    assert (held["event_id"], held["kind"], held["resource_id"]) == (
        notification,
        "order_notification",
        ORDER_ID,
    )
    assert "credentials" in held["last_error"].lower()
    # The blocking event itself is not held back by anything: its @fetch says why it waits.
    itself = json.loads(
        tcwebhook("events", "show", str(notification), "--json", "--config", config).stdout
    )
    assert itself["held_back_by"] == {}
    assert any(t["target"] == "@fetch" and t["last_error"] for t in itself["tasks"])


async def test_a_sink_that_is_not_ordered_is_not_held_back(
    tmp_path: Path, stores: list[Store]
) -> None:
    _, _, later = await held_back_by_a_fetch(tmp_path, stores)
    config = str(write_config(tmp_path, concurrency=4))
    report = json.loads(tcwebhook("status", "--json", "--config", config).stdout)
    assert report["blocked"] == []
    shown = json.loads(
        tcwebhook("events", "show", str(later[0]), "--json", "--config", config).stdout
    )
    assert shown["held_back_by"] == {}


async def test_its_own_failing_delivery_holds_a_sink_back(
    tmp_path: Path, stores: list[Store]
) -> None:
    settings = make_settings(
        tmp_path, sink("erp", "directory", path=tmp_path / "outbox", retry=SLOW_RETRY)
    )
    store = open_for(settings, stores)
    (tmp_path / "outbox").write_text("a file where the directory should be")
    body = samples.get_sample("order-issued").body
    first, _ = (store_body(store, settings, with_message_id(body, f"m-{n}")) for n in range(2))
    await DeliveryWorker(store, settings).drain()
    [blocked] = outbox_status(store, 3600, 300)["blocked"]
    assert (blocked["event_id"], blocked["waiting_for"], blocked["attempts"]) == (first, None, 1)
    assert "cannot write" in blocked["last_error"] and blocked["behind"] == 1
    assert blocked["kind"] == "order" and blocked["resource_id"]


async def test_a_queued_head_is_not_blocked(tmp_path: Path, stores: list[Store]) -> None:
    settings = make_settings(tmp_path, sink("erp", "directory", path=tmp_path / "outbox"))
    store = open_for(settings, stores)
    store_notification(store, settings, "order", "o-1")  # nothing attempted yet
    assert outbox_status(store, 3600, 0)["blocked"] == []


async def test_the_inspector_status_page_names_the_blocking_event(
    tmp_path: Path, stores: list[Store], aiohttp_client: Any
) -> None:
    from tcwebhook.config import AuthSettings, Settings
    from tcwebhook.inspector import create_app

    store, notification, _ = await held_back_by_a_fetch(tmp_path, stores)
    settings = Settings(data_dir=tmp_path / "data", auth=AuthSettings(type="bearer", token="t"))
    client = await aiohttp_client(create_app(settings, store))
    html = await (await client.get("/status")).text()
    section = html[html.index('id="blocked"') :]
    assert f'href="/events/{notification}">event #{notification}</a>' in section
    assert "order_notification" in section and "@fetch" in section
    assert "o-&lt;b&gt;held&lt;/b&gt;[red]" in section and "<b>held" not in html
    assert "credentials" in section.lower()
