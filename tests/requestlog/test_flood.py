"""A flood of refused requests: the request log's writes stay within its bucket, its rows within
its bounds, the disk within a few megabytes, and stored events keep being answered."""

from __future__ import annotations

import asyncio
import ssl
import statistics
import time
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from tcwebhook.config import AuthSettings, ServerSettings, Settings
from tcwebhook.server.app import REQUEST_RECORDER, create_app
from tcwebhook.store import SqliteStore, open_store
from tcwebhook.store.requests import RequestQuery

TOKEN = "flood-test-token-0123456789"
ORDER = b'{"eventName":"OrderIssuedByBuyer","orderEvent":{"order":{"id":"o-%d"}}}'
FLOOD = 10_000
CLIENTS = 48


async def test_ten_thousand_refused_requests_cost_bounded_writes_rows_and_disk(
    tmp_path: Path, server_ssl_ctx: ssl.SSLContext, client_ssl_ctx: ssl.SSLContext
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        server=ServerSettings(max_body_bytes=64 * 1024),
        auth=AuthSettings(type="bearer", token=TOKEN),
    )
    store = open_store(settings.store_url)
    assert isinstance(store, SqliteStore)
    app = create_app(settings, store)
    recorder = app[REQUEST_RECORDER]
    limits = recorder._limits
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(ssl=server_ssl_ctx)
    base = f"https://127.0.0.1:{server.port}"
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(ssl=client_ssl_ctx, limit=CLIENTS + 4)
    session = aiohttp.ClientSession(connector=connector)
    probes: list[float] = []
    statuses: dict[int, int] = {}
    try:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for index in range(FLOOD):
            queue.put_nowait(index)

        async def attacker() -> None:
            # Every request a different failure (a scan of paths, half without credentials):
            # the worst case for aggregation.
            while not queue.empty():
                index = queue.get_nowait()
                headers = auth if index % 2 else {"Content-Type": "application/json"}
                url = f"{base}/scan/{index}"
                async with session.post(url, data=b"{}", headers=headers) as response:
                    await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1

        async def prober() -> None:
            number = 0
            while not queue.empty():
                number += 1
                began = time.perf_counter()
                url = f"{base}/tradecloud/order"
                async with session.post(url, data=ORDER % number, headers=auth) as response:
                    assert response.status == 200
                probes.append(time.perf_counter() - began)
                await asyncio.sleep(0.1)

        started = time.monotonic()
        await asyncio.gather(prober(), *(attacker() for _ in range(CLIENTS)))
        elapsed = time.monotonic() - started
        await asyncio.sleep(1.5)  # one more flush of the writer thread
        written_during = recorder.rows_written
    finally:
        await session.close()
        await server.close()  # the final write: every count still held
    try:
        assert statuses == {401: FLOOD // 2, 404: FLOOD // 2}
        # Writes while running: within the token bucket (with a flush's slack).
        assert written_during <= limits.burst + limits.rate * (elapsed + 3)
        # Rows: at most the distinct failures held, plus the "N more not recorded" row.
        page = store.page_requests(RequestQuery(limit=500, refused=True))
        rows = _all_rows(store)
        assert rows <= limits.max_groups + 1
        assert any(record.kind == "dropped" for record in page.records)
        # Every refused request is in exactly one row's count.
        assert _count_sum(store) == FLOOD
        # Disk: the database and its WAL, a few megabytes at most.
        size = sum(p.stat().st_size for p in store.path.parent.glob(store.path.name + "*"))
        assert size < 8 * 1024 * 1024, size
        # Stored events kept being answered: wide margins for a loaded 2-core machine.
        assert probes and statistics.median(probes) < 2.0 and max(probes) < 10.0
        print(
            f"\nflood: {FLOOD} refused in {elapsed:.1f} s; request-log writes while running "
            f"{written_during}; rows {rows}; disk {size / 1024:.0f} KiB; probe median "
            f"{statistics.median(probes) * 1000:.0f} ms, max {max(probes) * 1000:.0f} ms "
            f"({len(probes)} probes)"
        )
    finally:
        store.close()


def _all_rows(store: SqliteStore) -> int:
    with store.reading() as connection:
        return int(connection.execute("SELECT count(*) FROM requests").fetchone()[0])


def _count_sum(store: SqliteStore) -> int:
    with store.reading() as connection:
        return int(connection.execute("SELECT sum(count) FROM requests").fetchone()[0])
