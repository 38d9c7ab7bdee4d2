"""The group commit both backends write through: nothing queued is lost at close, a failed
commit is every waiter's 503 and the writer recovers from it, on either backend."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from tcwebhook.errors import StoreUnavailable
from tcwebhook.store import open_store
from tests.helpers.pg import PostgresServer
from tests.helpers.store import backend_url, new_event

# Generous: a loaded two-core machine may take seconds for what takes milliseconds alone.
SETTLED_WITHIN = 30


@pytest.mark.usefixtures("store_backend")
async def test_close_commits_everything_queued_before_it(tmp_path: Path) -> None:
    """The stop marker ends the writer only after the requests queued before it, even when
    they share its batch."""
    store = open_store(backend_url(tmp_path))
    try:
        futures = [store.append(new_event(n, tasks=("erp",))) for n in range(300)]
        store.close()  # queued behind the 300, in the same batch as some of them
        results = await asyncio.wait_for(asyncio.gather(*futures), SETTLED_WITHIN)
    finally:
        store.close()
    assert sorted(result.duplicate for result in results) == [False] * 300
    reopened = open_store(backend_url(tmp_path), read_only=True)
    try:
        assert reopened.count() == 300
        assert reopened.status()["tasks"] == {"erp": {"pending": 300}}
    finally:
        reopened.close()


@pytest.mark.usefixtures("store_backend")
async def test_a_store_closed_and_used_again_starts_its_writer_again(tmp_path: Path) -> None:
    store = open_store(backend_url(tmp_path))
    try:
        commits: list[int] = []
        store.commit_observer = lambda events, seconds: commits.append(events)
        first = await store.append(new_event(1))
        store.close()
        second = await asyncio.wait_for(store.append(new_event(2)), SETTLED_WITHIN)
        assert second.id != first.id and not second.duplicate
        assert sum(commits) == 2  # the observer stays with the store across the restart
    finally:
        store.close()


async def test_a_database_gone_before_the_first_event_is_a_503_not_a_hang(
    tmp_path: Path,
) -> None:
    """The SQLite writer opens its connection with its first commit: when that fails, the
    requests of the batch are answered (503), and the writer lives on for the next ones."""
    data = tmp_path / "data"
    store = open_store(f"sqlite:///{data}/events.db")
    try:
        shutil.rmtree(data)
        with pytest.raises(StoreUnavailable, match="could not commit"):
            await asyncio.wait_for(store.append(new_event(1)), SETTLED_WITHIN)
        assert "the last commit failed" in (store.problem() or "")
        with pytest.raises(StoreUnavailable, match="could not commit"):
            await asyncio.wait_for(store.append(new_event(2)), SETTLED_WITHIN)
    finally:
        store.close()


def _end_store_sessions(postgres: PostgresServer) -> int:
    """End every session the store opened (as a failover or an administrator would)."""
    import psycopg

    with psycopg.connect(postgres.url(), autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'tcwebhook' AND pid != pg_backend_pid()"
        ).fetchall()
    return len(rows)


async def test_the_postgres_writer_reconnects_after_its_session_is_killed(
    postgres: PostgresServer,
) -> None:
    url = postgres.new_schema()
    store = open_store(url)
    try:
        assert not (await store.append(new_event(1))).duplicate  # the writer is connected
        assert _end_store_sessions(postgres) >= 1
        # The batch on the dead session fails as a 503 in the store's own words, once.
        with pytest.raises(StoreUnavailable, match=r"PostgreSQL store .* could not commit"):
            await asyncio.wait_for(store.append(new_event(2)), SETTLED_WITHIN)
        assert "the last commit failed" in (store.problem() or "")
        # Tradecloud's retry of that event, and the next ones, go through a new session.
        retried = await asyncio.wait_for(store.append(new_event(2)), SETTLED_WITHIN)
        assert not retried.duplicate
        assert not (await store.append(new_event(3))).duplicate
        assert store.problem() is None  # a later commit clears the failure
        assert [event.message_id for event in store.iter_events()] == ["m-1", "m-2", "m-3"]
    finally:
        store.close()
