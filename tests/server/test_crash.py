"""The real ``tcwebhook serve`` killed with SIGKILL mid-load loses no acknowledged event."""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path

from tcwebhook.datadir import DEV_CA_FILE
from tcwebhook.store import open_store
from tests.helpers.serve import send_all, start_server

EVENTS = 1000


def test_sigkill_under_load_loses_no_acknowledged_event(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ids = [str(uuid.uuid4()) for _ in range(EVENTS)]
    process, url = start_server(data_dir)
    token = (data_dir / "token").read_text().strip()
    ca = data_dir / DEV_CA_FILE
    try:
        acknowledged = asyncio.run(send_all(url, token, ca, ids, kill=process))
        process.wait(timeout=10)
    finally:
        process.kill()
    assert process.returncode == -signal.SIGKILL
    assert len(ids) // 3 <= len(acknowledged) < len(ids)  # killed while requests were in flight

    store = open_store(f"sqlite:///{data_dir / 'events.db'}")
    stored = {event.message_id for event in store.list_events(limit=10 * EVENTS)}
    assert acknowledged <= stored  # every 2xx was on disk

    process, url = start_server(data_dir)
    try:
        again = asyncio.run(send_all(url, token, ca, ids))
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0  # clean shutdown on SIGTERM
    assert again == set(ids)
    events = store.list_events(limit=10 * EVENTS)
    assert sorted(event.message_id for event in events) == sorted(ids)  # each exactly once
