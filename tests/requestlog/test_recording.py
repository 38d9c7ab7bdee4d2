"""The receiver records every refused request (and stored events read as requests), on both
backends, through a real TLS server, a real store and the ``tcwebhook requests`` command."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from tcwebhook.config import AuthSettings, ServerSettings, Settings, StoreSettings
from tcwebhook.config.schema import RequestsSettings
from tcwebhook.errors import StoreUnavailable
from tcwebhook.requestlog import RequestRecord, Write
from tcwebhook.server.app import REQUEST_RECORDER, create_app
from tcwebhook.store import AppendResult, NewEvent, SqliteStore, Store, open_store
from tcwebhook.store.requests import RequestCursor, RequestQuery
from tests.helpers.cli import tcwebhook

TOKEN = "s3cret-token-of-the-portal-0123456789"
WRONG = "wr0ng-token-pasted-in-the-portal-987"
ORDER = b'{"eventName":"OrderIssuedByBuyer","orderEvent":{"order":{"id":"o-1"}}}'


@dataclass
class Running:
    client: aiohttp.ClientSession
    base: str
    store: Store
    settings: Settings
    server: TestServer

    async def post(self, path: str, body: bytes, token: str = TOKEN, **headers: str) -> int:
        merged = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        async with self.client.post(
            self.base + path, data=body, headers={**merged, **headers}
        ) as r:
            await r.read()
            return r.status

    def records(self, refused: bool = False, limit: int = 100) -> list[RequestRecord]:
        return self.store.page_requests(RequestQuery(limit=limit, refused=refused)).records

    async def wait_for(self, count: int, timeout: float = 30.0) -> list[RequestRecord]:
        """The refused records once ``count`` are written (the writer thread runs every second)."""
        deadline = time.monotonic() + timeout
        while True:
            records = self.records(refused=True)
            if len(records) >= count or time.monotonic() > deadline:
                return records
            await asyncio.sleep(0.2)


def _settings(tmp_path: Path, requests: RequestsSettings | None = None) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        server=ServerSettings(max_body_bytes=64 * 1024),
        auth=AuthSettings(type="bearer", token=TOKEN),
        store=StoreSettings(url=os.environ.get("TCWEBHOOK_STORE_URL")),
        requests=requests or RequestsSettings(),
    )


@pytest.fixture
async def start(
    tmp_path: Path, server_ssl_ctx: ssl.SSLContext, client_ssl_ctx: ssl.SSLContext
) -> AsyncIterator[Callable[..., Any]]:
    opened: list[tuple[TestServer, aiohttp.ClientSession, Store]] = []

    async def run(requests: RequestsSettings | None = None, store: Store | None = None) -> Running:
        settings = _settings(tmp_path, requests)
        store = store or open_store(settings.store_url)
        server = TestServer(create_app(settings, store), host="127.0.0.1")
        await server.start_server(ssl=server_ssl_ctx)
        connector = aiohttp.TCPConnector(ssl=client_ssl_ctx, limit=64)
        client = aiohttp.ClientSession(connector=connector)
        opened.append((server, client, store))
        return Running(client, f"https://127.0.0.1:{server.port}", store, settings, server)

    yield run
    for server, client, store in opened:
        await client.close()
        await server.close()
        store.close()


def _by_status(records: list[RequestRecord]) -> dict[int | None, RequestRecord]:
    return {record.status: record for record in records}


@pytest.mark.usefixtures("store_backend")
async def test_each_refusal_is_recorded_with_its_reason_fix_and_tradecloud_reaction(
    start: Callable[..., Any], tmp_path: Path
) -> None:
    running: Running = await start()
    assert await running.post("/tradecloud/order", ORDER, token=WRONG) == 401
    assert await running.post("/tradecloud/ordr", ORDER) == 404
    assert (
        await running.post(
            "/tradecloud/order", b'{"eventName": "x", "token": "' + WRONG.encode() + b'"'
        )
        == 400
    )
    assert await running.post("/tradecloud/order", ORDER, **{"Content-Type": "text/plain"}) == 415
    assert await running.post("/tradecloud/order", ORDER) == 200

    records = await running.wait_for(4)
    refused = _by_status(records)
    assert set(refused) == {401, 404, 400, 415}

    wrong = refused[401]
    assert wrong.reason == "wrong Bearer credentials"
    assert wrong.fix is not None and "auth.token" in wrong.fix and "portal" in wrong.fix
    assert (wrong.tradecloud, wrong.auth, wrong.method, wrong.path) == (
        "dropped", "present (Bearer)", "POST", "/tradecloud/order"
    )  # fmt: skip
    assert wrong.client == "127.0.0.1" and wrong.duration_ms is not None

    assert refused[404].fix is not None and "server.paths" in refused[404].fix
    assert "not valid JSON" in refused[400].reason or "JSON" in refused[400].reason
    assert refused[400].excerpt is not None and "***" in refused[400].excerpt
    assert refused[415].content_type == "text/plain"
    assert all(record.tradecloud == "dropped" for record in records)

    # The stored event is a request too, read from its event row, and links to its event.
    everything = running.records()
    stored = [record for record in everything if record.status == 200]
    assert len(stored) == 1 and stored[0].event_id is not None
    assert stored[0].tradecloud == "stored" and stored[0].size == len(ORDER)
    assert running.store.get_event(stored[0].event_id).body == ORDER
    assert [record.time for record in everything] == sorted(
        (record.time for record in everything), reverse=True
    )

    # No credential anywhere: not the right token, not the wrong one, in the store's bytes.
    await running.server.close()  # the writer writes what it holds, then stops
    if isinstance(running.store, SqliteStore):
        for path in running.store.path.parent.glob(running.store.path.name + "*"):
            data = path.read_bytes()
            assert TOKEN.encode() not in data and WRONG.encode() not in data, path


class _DownStore(SqliteStore):
    """A store whose event commits fail (a full disk, a lost server) while reads still work."""

    def append(self, event: NewEvent) -> asyncio.Future[AppendResult]:
        future: asyncio.Future[AppendResult] = asyncio.get_running_loop().create_future()
        future.set_exception(StoreUnavailable("the disk is full"))
        return future


class _DownForAWhile(_DownStore):
    """The whole store is down: events are refused, and the request log's first writes fail."""

    failures = 2

    def record_requests(self, writes: Sequence[Write]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise StoreUnavailable("the disk is full")
        super().record_requests(writes)


async def test_request_rows_wait_for_a_store_that_comes_back(
    start: Callable[..., Any], tmp_path: Path
) -> None:
    store = _DownForAWhile(tmp_path / "down.db")
    running: Running = await start(store=store)
    assert await running.post("/tradecloud/order", ORDER) == 503
    [record] = await running.wait_for(1)
    assert store.failures == 0 and (record.status, record.tradecloud) == (503, "retried")


async def test_a_503_when_the_store_is_down_is_recorded_as_retried(
    start: Callable[..., Any], tmp_path: Path
) -> None:
    store = _DownStore(tmp_path / "down.db")
    running: Running = await start(store=store)
    assert await running.post("/tradecloud/order", ORDER) == 503
    [record] = await running.wait_for(1)
    assert (record.status, record.tradecloud) == (503, "retried")
    assert "status" in (record.fix or "") and record.excerpt is not None


@pytest.mark.usefixtures("store_backend")
async def test_identical_failures_are_one_row_with_a_count(start: Callable[..., Any]) -> None:
    running: Running = await start()
    for _ in range(10):
        assert await running.post("/tradecloud/order", ORDER, token=WRONG) == 401
    [first] = await running.wait_for(1)  # written once: the rewrite below must replace it
    for _ in range(20):
        assert await running.post("/tradecloud/order", ORDER, token=WRONG) == 401
    await running.server.close()  # final write: the whole count
    [row] = running.records(refused=True)
    assert first.count >= 1 and row.count == 30
    assert row.first_seen is not None and row.first_seen <= row.time


async def test_pages_are_keyset_paged_without_gaps_or_repeats(start: Callable[..., Any]) -> None:
    running: Running = await start()
    for index in range(7):
        assert await running.post(f"/nowhere/{index}", ORDER) == 404
        assert (
            await running.post("/tradecloud/order", ORDER.replace(b"o-1", f"o-{index}".encode()))
            == 200
        )
    await running.server.close()
    whole = running.records()
    assert len(whole) == 14
    seen: list[RequestRecord] = []
    cursor: RequestCursor | None = None
    for _ in range(len(whole)):  # a cursor that does not move must fail, not loop
        page = running.store.page_requests(RequestQuery(limit=3, before=cursor))
        seen += page.records
        if page.next is None:
            break
        cursor = RequestCursor.decode(page.next.encode())
    assert page.next is None and seen == whole


@pytest.mark.usefixtures("store_backend")
async def test_requests_command_lists_newest_first_as_json_and_escaped(
    start: Callable[..., Any], tmp_path: Path
) -> None:
    running: Running = await start()
    assert await running.post("/tradecloud/order", ORDER) == 200
    assert await running.post("/\x1b[31mevil", ORDER, token=WRONG) == 401
    await running.server.close()
    data_dir = str(tmp_path / "data")

    result = tcwebhook("requests", "--json", "--data-dir", data_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = json.loads(result.stdout)
    assert [row["status"] for row in rows] == [401, 200]
    assert {"time", "method", "path", "status", "reason", "duration_ms", "client",
            "tradecloud", "event_id"} <= set(rows[0])  # fmt: skip
    assert rows[1]["event_id"] is not None and rows[1]["tradecloud"] == "stored"
    assert rows[1]["auth"] == "present (Bearer)"
    assert "\x1b" not in result.stdout

    refused = tcwebhook("requests", "--refused", "--data-dir", data_dir)
    assert refused.returncode == 0 and "\x1b" not in refused.stdout
    assert "401" in refused.stdout and "auth.token" in refused.stdout
    assert TOKEN not in refused.stdout + result.stdout and WRONG not in refused.stdout

    later = tcwebhook("requests", "--json", "--since", "2999-01-01", "--data-dir", data_dir)
    assert later.returncode == 0 and json.loads(later.stdout) == []
    bad = tcwebhook("requests", "--since", "yesterday-ish", "--data-dir", data_dir)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_requests_command_without_a_store_is_one_line_exit_2(tmp_path: Path) -> None:
    result = tcwebhook("requests", "--data-dir", str(tmp_path / "none"))
    assert result.returncode == 2 and "Traceback" not in (result.stdout + result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1


async def test_recording_can_be_switched_off(start: Callable[..., Any]) -> None:
    running: Running = await start(requests=RequestsSettings(enabled=False))
    assert REQUEST_RECORDER not in running.server.app
    assert await running.post("/tradecloud/order", ORDER, token=WRONG) == 401
    await running.server.close()
    assert running.records(refused=True) == []


def test_behind_a_proxy_the_command_says_tls_failures_cannot_be_seen(tmp_path: Path) -> None:
    open_store(f"sqlite:///{tmp_path / 'data' / 'events.db'}").close()
    config = tmp_path / "tcwebhook.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\nserver:\n  tls: false\n  unix_socket: {tmp_path / 's'}\n"
    )
    result = tcwebhook("requests", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "server.tls is false" in result.stderr and "proxy's error log" in result.stderr
    as_json = tcwebhook("requests", "--json", "--config", str(config))
    assert json.loads(as_json.stdout) == []  # the note stays out of the JSON


async def test_a_405_and_a_missing_header_are_recorded(start: Callable[..., Any]) -> None:
    running: Running = await start()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with running.client.delete(running.base + "/tradecloud/order", headers=headers) as r:
        assert r.status == 405
    async with running.client.post(running.base + "/tradecloud/order", data=ORDER) as r:
        assert r.status == 401
    refused = _by_status(await running.wait_for(2))
    assert refused[405].method == "DELETE" and refused[405].fix is not None
    assert refused[401].auth == "absent" and refused[401].reason == "no Authorization header"
