"""``tcwebhook store copy``: SQLite → PostgreSQL → SQLite, everything kept, idempotent."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

from tcwebhook.store import Outcome, open_store
from tests.helpers.pg import PostgresServer
from tests.helpers.store import new_event


def copy(source: str, destination: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "tcwebhook", "store", "copy", source, destination, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_round_trip_keeps_ids_tasks_and_fetched_objects(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    first = f"sqlite:///{tmp_path}/first.db"
    source = open_store(first)
    try:
        ids = [source.append_sync(new_event(n, tasks=("erp",))).id for n in range(5)]
        notification = dataclasses.replace(new_event(9), dedup_key=None, tasks=("@fetch",))
        fetched_id = source.append_sync(notification).id
        source.attach_fetched(fetched_id, b'{"id": "order-9"}', ["0001"])
        claimed = source.claim_tasks("erp", 2, 60, True, "host:1")
        source.finish_tasks([Outcome(claimed[0], "done", output="ok")], [claimed[1].id])
        expected = [event.detail() for event in source.iter_events()]
    finally:
        source.close()

    postgres_url = postgres.new_schema()
    assert copy(first, postgres_url) == {"total": 6, "copied": 6, "skipped": 0}
    assert copy(first, postgres_url) == {"total": 6, "copied": 0, "skipped": 6}  # idempotent
    second = f"sqlite:///{tmp_path}/second.db"
    assert copy(postgres_url, second)["copied"] == 6

    for url in (postgres_url, second):
        store = open_store(url)
        try:
            assert [event.detail() for event in store.iter_events()] == expected
            later = store.append_sync(new_event(42))
            assert later.id > max([*ids, fetched_id])  # new events never reuse copied ids
            assert store.append_sync(new_event(1)).duplicate  # dedup keys came along
        finally:
            store.close()


def test_a_different_event_under_the_same_id_is_refused(tmp_path: Path) -> None:
    first, other = f"sqlite:///{tmp_path}/first.db", f"sqlite:///{tmp_path}/other.db"
    for url, n in ((first, 1), (other, 2)):
        store = open_store(url)
        store.append_sync(new_event(n))
        store.close()
    result = subprocess.run(
        [sys.executable, "-m", "tcwebhook", "store", "copy", first, other],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "already holds a different event #1" in result.stderr


def test_a_missing_source_is_one_line_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    result = subprocess.run(
        [sys.executable, "-m", "tcwebhook", "store", "copy", f"sqlite:///{missing}",
         f"sqlite:///{tmp_path}/copy.db"],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "no event store" in result.stderr
    assert not missing.exists()
