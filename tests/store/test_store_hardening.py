"""The store on an unlucky day: permissions, read-only opening, racing migrations, full disks."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from tcwebhook.errors import NotFound, StoreUnavailable
from tcwebhook.store import SqliteStore, open_store
from tcwebhook.store.sqlite.migrations import MIGRATIONS
from tests.helpers.store import backend_url, new_event


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_data_directory_is_0700_and_database_files_0600(tmp_path: Path) -> None:
    path = tmp_path / "data" / "events.db"
    store = open_store(f"sqlite:///{path}")
    keep = sqlite3.connect(path)  # the last connection to close removes -wal and -shm
    try:
        keep.execute("SELECT count(*) FROM events").fetchone()
        store.append_sync(new_event(1))
        assert mode(path.parent) == 0o700
        for name in ("events.db", "events.db-wal", "events.db-shm"):
            assert mode(path.parent / name) == 0o600, name
    finally:
        keep.close()
        store.close()


@pytest.mark.usefixtures("store_backend")
def test_read_only_opening_never_creates_a_store(tmp_path: Path) -> None:
    url = backend_url(tmp_path)
    for options in ({"read_only": True}, {"create": False}, {"read_only": True}):
        with pytest.raises(StoreUnavailable, match=r"there is no event store .*tcwebhook serve"):
            open_store(url, **options)  # type: ignore[arg-type]
    assert not (tmp_path / "data").exists()


@pytest.mark.usefixtures("store_backend")
def test_a_read_only_store_reads_and_never_writes(tmp_path: Path) -> None:
    store = open_store(backend_url(tmp_path))
    store.append_sync(new_event(1))
    store.close()
    reader = open_store(backend_url(tmp_path), read_only=True)
    try:
        assert [event.message_id for event in reader.list_events()] == ["m-1"]
        assert reader.status()["events"] == {"order": 1}
        with pytest.raises(StoreUnavailable):
            reader.append_sync(new_event(2))
        with pytest.raises(StoreUnavailable):
            reader.requeue_tasks()
        assert reader.probe_write() is None  # 'status' asks whether serve could write
        assert reader.count() == 1
    finally:
        reader.close()


@pytest.mark.usefixtures("store_backend")
async def test_commits_are_observed_and_a_healthy_store_has_no_problem(tmp_path: Path) -> None:
    store = open_store(backend_url(tmp_path))
    observed: list[tuple[int, float]] = []
    store.commit_observer = lambda events, seconds: observed.append((events, seconds))
    try:
        await asyncio.gather(*(store.append(new_event(n)) for n in range(3)))
        assert sum(events for events, _ in observed) == 3
        assert all(seconds >= 0 for _, seconds in observed)
        assert store.problem() is None and store.probe_write() is None
    finally:
        store.close()


def test_read_only_opening_of_a_copy_changes_nothing(tmp_path: Path) -> None:
    original = tmp_path / "events.db"
    store = open_store(f"sqlite:///{original}")
    store.append_sync(new_event(1))
    store.close()  # the last connection checkpoints the WAL into the database file
    copy = tmp_path / "copy" / "events.db"
    copy.parent.mkdir()
    shutil.copy(original, copy)
    before = copy.read_bytes()
    reader = open_store(f"sqlite:///{copy}", read_only=True)
    assert [event.message_id for event in reader.list_events()] == ["m-1"]
    assert reader.get_event(1).number == "PO1"
    assert copy.read_bytes() == before
    with pytest.raises(StoreUnavailable):
        reader.append_sync(new_event(2))


def test_read_only_opening_does_not_migrate_an_older_store(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE schema_migrations (name TEXT, applied_at TEXT)")
    with pytest.raises(StoreUnavailable, match="lacks 0001_events"):
        open_store(f"sqlite:///{path}", read_only=True)
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == 0


def test_racing_first_opens_run_each_migration_once(tmp_path: Path) -> None:
    errors: list[BaseException] = []
    for round_ in range(4):
        path = tmp_path / f"race-{round_}.db"
        barrier = threading.Barrier(6)

        def open_once(path: Path = path, barrier: threading.Barrier = barrier) -> None:
            barrier.wait(timeout=10)
            try:
                SqliteStore(path, busy_timeout=10).close()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=open_once) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not errors, errors
        with sqlite3.connect(path) as connection:
            names = [row[0] for row in connection.execute("SELECT name FROM schema_migrations")]
        assert names == [name for name, _ in MIGRATIONS]


@pytest.mark.usefixtures("store_backend")
def test_an_id_beyond_64_bit_integers_is_not_found(tmp_path: Path, stores: list) -> None:
    store = open_store(backend_url(tmp_path))
    stores.append(store)
    with pytest.raises(NotFound, match="no event with id 1180591620717411303424"):
        store.get_event(1180591620717411303424)


class _FullStore(SqliteStore):
    """A database that cannot grow: SQLite answers "database or disk is full", as on a full disk."""

    def _connect(self) -> sqlite3.Connection:
        connection = super()._connect()
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        connection.execute(f"PRAGMA max_page_count = {max(pages, 1)}")
        return connection


async def test_a_full_disk_is_reported_as_such(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    open_store(f"sqlite:///{path}").close()
    store = _FullStore(path)
    big = dataclasses.replace(new_event(1), body=os.urandom(200_000))
    try:
        with pytest.raises(StoreUnavailable) as raised:
            await store.append(big)
        assert "full" in str(raised.value) and "rollback" not in str(raised.value)
        assert "full" in (store.problem() or "")  # what /healthz reports
        with pytest.raises(StoreUnavailable) as raised:
            store.append_sync(big)
        assert "full" in str(raised.value) and "rollback" not in str(raised.value)
    finally:
        store.close()


@pytest.mark.parametrize("store_backend", ["postgres"], indirect=True)
def test_read_only_opening_does_not_migrate_an_older_postgres_store(
    tmp_path: Path, store_backend: str
) -> None:
    import psycopg

    url = backend_url(tmp_path)
    open_store(url).close()
    with psycopg.connect(url) as connection:
        connection.execute("DELETE FROM schema_migrations WHERE name = '0006_inspector_indexes'")
    with pytest.raises(StoreUnavailable, match="lacks 0006_inspector_indexes"):
        open_store(url, read_only=True)
    open_store(url, create=False).close()  # a writer upgrades it
    open_store(url, read_only=True).close()
