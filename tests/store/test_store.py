"""The stores: migrations, durability, deduplication, failures.

The shared behaviour runs on every backend (the ``store`` fixture); SQLite's own file
handling on SQLite only (``sqlite_store``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tcwebhook.errors import NotFound, StoreUnavailable
from tcwebhook.store import (
    AppendResult,
    EventQuery,
    NewEvent,
    Outcome,
    SqliteStore,
    Store,
    open_store,
)
from tcwebhook.store.sql import SQLITE, page_ids_query
from tcwebhook.store.sqlite.migrations import MIGRATIONS
from tcwebhook.store.sqlite.writer import insert_events
from tests.helpers.pg import PostgresServer
from tests.helpers.store import backend_url, new_event


@pytest.fixture
def store(tmp_path: Path, store_backend: str) -> Iterator[Store]:
    store = open_store(backend_url(tmp_path))
    yield store
    store.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "events.db")
    yield store
    store.close()


def test_migrations_from_blank_database(tmp_path: Path) -> None:
    path = tmp_path / "blank.db"
    open_store(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as connection:
        names = [row[0] for row in connection.execute("SELECT name FROM schema_migrations")]
        assert names == [name for name, _ in MIGRATIONS]
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    open_store(f"sqlite:///{path}").close()  # a second open applies nothing twice


def test_unsupported_url() -> None:
    from tcwebhook.errors import ConfigError

    with pytest.raises(ConfigError, match="sqlite:///"):
        open_store("mysql://db/events")


async def test_append_list_get(store: Store) -> None:
    first = await store.append(new_event(1, tasks=("erp",)))
    second = await store.append(new_event(2))
    assert (first.duplicate, second.duplicate) == (False, False)
    events = store.list_events()
    assert [e.id for e in events] == [second.id, first.id]
    stored = store.get_event(first.id)
    assert stored.number == "PO1" and stored.changed_lines == ("0001",)
    assert [(t.target, t.state) for t in stored.tasks] == [("erp", "pending")]
    assert store.list_events(event_name="Order*")[0].id == second.id
    assert store.list_events(kind="shipment") == []
    with pytest.raises(NotFound):
        store.get_event(999)


async def test_duplicates_are_stored_once(store: Store) -> None:
    results = await asyncio.gather(*(store.append(new_event(1)) for _ in range(5)))
    assert len({r.id for r in results}) == 1
    assert sum(not r.duplicate for r in results) == 1
    assert store.count() == 1


async def test_one_batch_mixing_new_duplicate_and_unkeyed_events(store: Store) -> None:
    earlier = await store.append(new_event(1, tasks=("erp",)))
    notification = dataclasses.replace(new_event(9), dedup_key=None, tasks=("@fetch",))
    # Queued together, so the writer stores them in one transaction.
    results = await asyncio.gather(
        store.append(new_event(2, tasks=("erp",))),
        store.append(new_event(1, tasks=("erp",))),  # stored before this batch
        store.append(notification),
        store.append(new_event(2, tasks=("erp",))),  # a duplicate within the batch
        store.append(notification),  # no key: every GET notification is stored
        store.append(new_event(3)),
    )
    assert [r.duplicate for r in results] == [False, True, False, True, False, False]
    assert results[1].id == earlier.id and results[3].id == results[0].id
    assert len({results[0].id, results[2].id, results[4].id, results[5].id, earlier.id}) == 5
    assert store.count() == 5
    assert [t.target for t in store.get_event(results[0].id).tasks] == ["erp"]
    assert [t.target for t in store.get_event(results[4].id).tasks] == ["@fetch"]
    assert store.get_event(results[5].id).tasks == ()
    assert store.get_event(results[5].id).number == "PO3"


def _with_change(event: NewEvent, change: str, recovered: bool = False) -> NewEvent:
    """``event`` carrying the change ``change``; recovered by reconcile, keyed by it."""
    dedup = change if recovered else event.dedup_key
    return dataclasses.replace(event, change_key=change, dedup_key=dedup)


async def test_a_webhook_for_a_change_already_recovered_is_a_duplicate(store: Store) -> None:
    recovered = await store.append(_with_change(new_event(1), "c:order:o-1@1", recovered=True))
    results = await asyncio.gather(
        store.append(_with_change(new_event(2, tasks=("erp",)), "c:order:o-1@1")),  # stored
        store.append(_with_change(new_event(3), "c:order:o-3@1", recovered=True)),
        store.append(_with_change(new_event(4, tasks=("erp",)), "c:order:o-3@1")),  # just above
        store.append(_with_change(new_event(5, tasks=("erp",)), "c:order:o-5@1")),  # news
        store.append(_with_change(new_event(5, tasks=("erp",)), "c:order:o-5@1")),  # again
    )
    assert [r.duplicate for r in results] == [True, False, True, False, True]
    assert results[0].id == recovered.id and results[2].id == results[1].id
    assert results[4].id == results[3].id
    assert store.count() == 3
    assert store.get_event(recovered.id).tasks == ()  # a duplicate adds no delivery
    assert [t.target for t in store.get_event(results[3].id).tasks] == ["erp"]
    # Stored under its own key and its change recovered too: it names the event of its key.
    retried = await store.append(_with_change(new_event(5), "c:order:o-1@1"))
    assert retried == AppendResult(results[3].id, duplicate=True)


def test_batches_with_more_keys_than_one_query_takes(sqlite_store: SqliteStore) -> None:
    # One transaction, as the writer commits a full batch: 1,400 keys, more than one lookup
    # takes, with the stored ones and the new ones in every part of it.
    events = [_with_change(new_event(n, tasks=("erp",)), f"c:order:o-{n}@1") for n in range(700)]
    with sqlite_store.writing() as connection:
        first = insert_events(connection, events[::2])
    with sqlite_store.writing() as connection:
        mixed = insert_events(connection, events)
    assert not any(r.duplicate for r in first)
    assert [r.duplicate for r in mixed] == [n % 2 == 0 for n in range(700)]
    assert [r.id for r in mixed[::2]] == [r.id for r in first]
    assert len({r.id for r in mixed}) == 700 == sqlite_store.count()
    assert {e.number for e in sqlite_store.list_events(limit=700)} == {f"PO{n}" for n in range(700)}
    assert all(len(e.tasks) == 1 for e in sqlite_store.list_events(limit=700))


async def test_every_event_is_found_by_its_message_id(store: Store) -> None:
    webhook = await store.append(new_event(1))
    recovered = await store.append(_with_change(new_event(2), "c:order:o-2@1", recovered=True))
    notification = await store.append(dataclasses.replace(new_event(3), dedup_key=None))
    hashed = dataclasses.replace(new_event(4), message_id=None, dedup_key="b:" + "0" * 64)
    await store.append(hashed)
    for n, result in ((1, webhook), (2, recovered), (3, notification)):
        assert [e.id for e in store.page_events(EventQuery(search=f"m-{n}"))] == [result.id]
    assert store.page_events(EventQuery(search="m-4")) == []
    assert store.page_events(EventQuery(search="m:m-1")) == []  # a message id, not a key


def test_a_message_id_is_searched_through_indexes(sqlite_store: SqliteStore) -> None:
    sql, params = page_ids_query(SQLITE, EventQuery(search="m-1"))
    with sqlite_store.reading() as connection:
        plan = [row[3] for row in connection.execute("EXPLAIN QUERY PLAN " + sql, params)]
        indexes = dict(connection.execute("SELECT name, sql FROM sqlite_master"))
    # A webhook through the unique dedup key, the other events through their partial index.
    assert "SEARCH e USING INDEX sqlite_autoindex_events_1 (dedup_key=?)" in plan, plan
    assert "SEARCH e USING INDEX events_other_message_id (message_id=?)" in plan, plan
    assert not any(step.startswith("SCAN") for step in plan), plan
    assert "events_message_id" not in indexes  # the index every insert paid for
    assert "WHERE message_id IS NOT NULL" in indexes["events_other_message_id"]  # webhooks stay out


async def test_values_longer_than_an_index_entry_are_stored_and_deduplicated(
    store: Store,
) -> None:
    huge = "m" * 100_000  # PostgreSQL's btree entries hold about 2.7 kB
    event = dataclasses.replace(
        new_event(1, dedup="m:" + huge), message_id=huge, number="PO" + "9" * 5000
    )
    first = await store.append(event)
    again = await store.append(event)
    assert not first.duplicate and again == AppendResult(first.id, duplicate=True)
    stored = store.get_event(first.id)
    assert stored.body == event.body and stored.number is not None
    assert stored.number.startswith("PO999") and stored.message_id is not None


async def test_many_concurrent_appends_share_commits(store: Store) -> None:
    commits: list[int] = []  # events per commit
    store.commit_observer = lambda events, seconds: commits.append(events)
    results = await asyncio.gather(*(store.append(new_event(n)) for n in range(500)))
    assert len({r.id for r in results}) == 500
    assert store.count() == 500
    assert sum(commits) == 500
    # Queued together, the requests share commits (one fsync for many), not one each.
    assert len(commits) <= 50, f"500 appends took {len(commits)} commits"


async def test_locked_database_gives_store_unavailable(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/locked.db", busy_timeout=0.1)
    blocker = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreUnavailable, match="could not commit"):
            await store.append(new_event(1))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert (await store.append(new_event(1))).duplicate is False  # recovers once the lock is gone
    store.close()


def test_unwritable_location_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreUnavailable, match="cannot create the event store"):
        open_store(f"sqlite:///{blocker}/events.db")


async def test_large_bodies_are_stored_compressed_and_read_back_byte_exact(
    sqlite_store: SqliteStore,
) -> None:
    from tcwebhook.store.codec import COMPRESS_FROM

    lines = b",".join(b'{"line": %d, "item": "bolt M8x40"}' % n for n in range(2000))
    large = b'{"eventName": "OrderIssuedByBuyer", "lines": [' + lines + b"]}  \n"
    assert len(large) > COMPRESS_FROM
    random_large = os.urandom(COMPRESS_FROM + 100)  # compression would not shrink it
    small = b'{"eventName": "OrderIssuedByBuyer"}\r\n'
    ids = {}
    for n, body in enumerate((large, random_large, small)):
        result = await sqlite_store.append(dataclasses.replace(new_event(n), body=body))
        ids[body] = result.id
    with sqlite3.connect(sqlite_store.path) as connection:
        stored = dict(connection.execute("SELECT id, body_encoding FROM events").fetchall())
        raw_size = connection.execute(
            "SELECT length(body) FROM events WHERE id = ?", (ids[large],)
        ).fetchone()[0]
    assert stored == {ids[large]: "zstd", ids[random_large]: None, ids[small]: None}
    assert raw_size < len(large) / 5
    for body, event_id in ids.items():
        assert sqlite_store.get_event(event_id).body == body
    assert [event.body for event in sqlite_store.iter_events()] == [large, random_large, small]


async def test_database_of_the_previous_schema_is_migrated_and_keeps_its_bodies(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as connection:  # what the previous version left on disk
        connection.execute(
            "CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT)"
        )
        for name, sql in MIGRATIONS:
            if name < "0003":
                connection.executescript(sql)
                connection.execute("INSERT INTO schema_migrations VALUES (?, 'then')", (name,))
        body = b'{"eventName": "OrderIssuedByBuyer", "pad": "' + b"x" * 40_000 + b'"}'
        connection.execute(
            "INSERT INTO events (received_at, kind, changed_lines, method, path, headers, body) "
            "VALUES ('2026-01-01T00:00:00Z', 'order', '[]', 'POST', '/tradecloud/order', "
            "'{}', ?)",
            (body,),
        )
    store = open_store(f"sqlite:///{path}")
    try:
        assert store.get_event(1).body == body
        new = await store.append(dataclasses.replace(new_event(2), body=body + b" "))
        assert store.get_event(new.id).body == body + b" "
    finally:
        store.close()


def test_unknown_body_encoding_is_one_clear_error(sqlite_store: SqliteStore) -> None:
    event_id = sqlite_store.append_sync(new_event(1)).id
    with sqlite3.connect(sqlite_store.path) as connection:
        connection.execute("UPDATE events SET body_encoding = 'brotli' WHERE id = ?", (event_id,))
    with pytest.raises(StoreUnavailable, match=r"'brotli'.*upgrade tcwebhook"):
        sqlite_store.get_event(event_id)


async def test_checkpoints_run_beside_the_writer(sqlite_store: SqliteStore) -> None:
    """Far below the writer's own checkpoint threshold, committed pages still reach the
    database file: the checkpointer thread copies them out of the WAL."""
    body = os.urandom(40_000)  # incompressible: 150 of them are ~6 MB of pages
    await asyncio.gather(
        *(
            sqlite_store.append(dataclasses.replace(new_event(n), body=body + b"%d" % n))
            for n in range(150)
        )
    )
    for _ in range(100):
        if sqlite_store.path.stat().st_size > 4_000_000:
            break
        await asyncio.sleep(0.05)
    assert sqlite_store.path.stat().st_size > 4_000_000


def test_claims_lapse_and_are_taken_over(store: Store) -> None:
    event_id = store.append_sync(new_event(1, tasks=("erp",))).id
    (first,) = store.claim_tasks("erp", 10, 0.2, False, "host-a:1")
    assert first.event_id == event_id
    assert store.claim_tasks("erp", 10, 60, False, "host-b:2") == []  # held by host-a
    time.sleep(0.3)  # host-a died: its lease runs out
    (taken,) = store.claim_tasks("erp", 10, 60, False, "host-b:2")
    assert taken.id == first.id and store.claimants() == ["host-b:2"]


def test_concurrent_claimers_never_share_a_task(store: Store) -> None:
    for n in range(60):
        store.append_sync(new_event(n, tasks=("erp",)))

    def claim_all(claimant: str) -> list[int]:
        claimed: list[int] = []
        while batch := store.claim_tasks("erp", 4, 60, False, claimant):
            claimed += [task.id for task in batch]
        return claimed

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(claim_all, [f"host-{n}:1" for n in range(4)]))
    everything = [task_id for claimed in results for task_id in claimed]
    assert len(everything) == len(set(everything)) == 60


def test_strict_order_claims_one_run_at_a_time(store: Store) -> None:
    for n in range(5):
        store.append_sync(new_event(n, tasks=("erp",)))
    first = store.claim_tasks("erp", 2, 60, True, "host-a:1")
    assert len(first) == 2
    assert store.claim_tasks("erp", 2, 60, True, "host-b:1") == []  # the head is running
    store.finish_tasks([Outcome(first[0], "done")], released=[first[1].id])
    second = store.claim_tasks("erp", 10, 60, True, "host-b:1")
    assert [task.id for task in second] == sorted(task.id for task in second)
    assert second[0].id == first[1].id and len(second) == 4  # in order, from the released one


def test_a_strictly_ordered_sink_waits_for_the_fetch_of_its_oldest_event(store: Store) -> None:
    """A GET notification's sink task waits for its API fetch; meanwhile a strictly ordered
    sink gets nothing, not the events after it."""
    notification = dataclasses.replace(new_event(1), dedup_key=None, tasks=("@fetch", "erp"))
    head = store.append_sync(notification).id
    after = store.append_sync(new_event(2, tasks=("erp",))).id
    assert store.claim_tasks("erp", 10, 60, True, "host-a:1") == []
    assert [task.event_id for task in store.claim_tasks("erp", 10, 60, False, "b:1")] == [after]
    (fetch,) = store.claim_tasks("@fetch", 10, 60, False, "host-a:1")
    store.finish_tasks([Outcome(fetch, "done")], released=[])
    store.release_claims("b:1")
    claimed = store.claim_tasks("erp", 10, 60, True, "host-a:1")
    assert [task.event_id for task in claimed] == [head, after]


def test_instances_starting_together_migrate_once(tmp_path: Path, postgres: PostgresServer) -> None:
    from tcwebhook.store.postgres.migrations import MIGRATIONS as PG_MIGRATIONS

    url = postgres.new_schema()
    with ThreadPoolExecutor(4) as pool:
        stores = list(pool.map(lambda _: open_store(url), range(4)))
    for store in stores:
        store.close()
    import psycopg

    schema = url.rsplit("%3D", 1)[1]
    with psycopg.connect(postgres.url()) as connection:
        names = [
            row[0]
            for row in connection.execute(
                f"SELECT name FROM {schema}.schema_migrations ORDER BY name"
            )
        ]
    # Every SQLite migration has its PostgreSQL counterpart of the same name.
    assert names == [name for name, _ in PG_MIGRATIONS] == [name for name, _ in MIGRATIONS]


def test_postgres_stores_bodies_without_compressing_them_again(postgres: PostgresServer) -> None:
    import psycopg

    url = postgres.new_schema()
    open_store(url).close()
    schema = url.rsplit("%3D", 1)[1]
    with psycopg.connect(postgres.url()) as connection:
        row = connection.execute(
            "SELECT attstorage FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attname = 'body'",
            (f"{schema}.events",),
        ).fetchone()
    assert row == ("e",)  # EXTERNAL: zstd did the compressing; out of line when long, as is


def test_new_tasks_wake_the_workers_of_other_processes(postgres: PostgresServer) -> None:
    import threading

    url = postgres.new_schema()
    receiver, worker = open_store(url), open_store(url)  # as two processes would
    woken = threading.Event()
    try:
        stop_watching = worker.watch(woken.set)
        assert woken.wait(5)  # once on connecting: for what was stored while not listening
        woken.clear()
        receiver.append_sync(new_event(1))  # no tasks: nobody to wake
        assert not woken.wait(0.5)
        receiver.append_sync(new_event(2, tasks=("erp",)))
        assert woken.wait(5)
        stop_watching()
    finally:
        receiver.close()
        worker.close()


async def test_a_frozen_server_gives_store_unavailable_in_bounded_time(
    postgres: PostgresServer,
) -> None:
    import signal

    store = open_store(postgres.new_schema())
    store.append_timeout = 0.5  # type: ignore[attr-defined]
    try:
        await store.append(new_event(1))  # the writer is connected
        postgres.signal(signal.SIGSTOP)  # no answers, no closed connection
        try:
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match="did not commit in time"):
                await store.append(new_event(2))
            assert time.monotonic() - started < 3
        finally:
            postgres.signal(signal.SIGCONT)
        for _ in range(40):  # the batch stuck on the frozen server goes through once it thaws
            try:
                assert (await store.append(new_event(3))).duplicate is False
                break
            except StoreUnavailable:
                await asyncio.sleep(0.25)
        assert {event.message_id for event in store.iter_events()} == {"m-1", "m-2", "m-3"}
    finally:
        store.close()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("sqlite:////var/lib/tcwebhook/events.db", "sqlite:////var/lib/tcwebhook/events.db"),
        ("sqlite:///./events.db", "sqlite:///./events.db"),
        ("postgresql://tc:s3cret@db:5432/tc", "postgresql://tc:***@db:5432/tc"),
        ("postgresql://db/tc?user=tc&password=s3cret", "postgresql://db/tc?user=tc&password=***"),
        # libpq's passphrase of the client key is a secret too, and key names are any case.
        (
            "postgresql://db/tc?sslmode=verify-full&sslpassword=k3y&PassWord=s3cret",
            "postgresql://db/tc?sslmode=verify-full&sslpassword=***&PassWord=***",
        ),
    ],
)
def test_store_urls_are_shown_whole_but_for_their_password(url: str, shown: str) -> None:
    from tcwebhook.store.base import display_url

    assert display_url(url) == shown
