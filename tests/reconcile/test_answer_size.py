"""Every answer of the Tradecloud API is read with a bound: over it, one line naming the limit
(exit 1 in reconcile, the cursor kept), never a process that runs out of memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from tcwebhook.changes import parse_instant
from tcwebhook.errors import ApiError
from tcwebhook.reconcile import reconcile
from tcwebhook.tradecloud import MAX_ANSWER_BYTES, TradecloudClient
from tests.helpers.fake_tradecloud import PASSWORD, USERNAME, FakeTradecloud
from tests.helpers.outbox import open_for
from tests.helpers.reconcile import T, settings_for

SINCE = parse_instant(T)
ENDPOINT = "order-search/poll"


async def test_an_answer_over_the_size_limit_is_one_line_naming_the_limit(
    tmp_path: Path, fake_api: FakeTradecloud, ca_file: Path, stores: list
) -> None:
    settings = settings_for(tmp_path, fake_api, ca_file)
    store = open_for(settings, stores)
    for chunked in (False, True):
        fake_api.huge_poll_answer = 3 << 20
        fake_api.huge_poll_chunked = chunked
        client = TradecloudClient.from_settings(settings, max_answer_bytes=1 << 20)
        try:
            report = await reconcile(settings, store, since=SINCE, shipments=False, client=client)
        finally:
            await client.close()
        assert not report.ok and report.error_exit_code == 1
        error = report.error or ""
        assert "1 MiB" in error and "order-search/poll" in error and "\n" not in error
        assert store.reconcile_cursor(ENDPOINT) is None


@pytest.mark.parametrize("chunked", [False, True])
async def test_the_default_limit_stops_an_endless_answer(
    fake_api: FakeTradecloud, ca_file: Path, chunked: bool
) -> None:
    fake_api.huge_poll_answer = MAX_ANSWER_BYTES + (4 << 20)
    fake_api.huge_poll_chunked = chunked
    async with TradecloudClient(
        fake_api.base_url, USERNAME, PASSWORD, ca_file=ca_file, attempts=1
    ) as api:
        with pytest.raises(ApiError, match="MiB"):
            await api.poll(ENDPOINT, T)


async def test_pages_too_large_for_the_limit_are_asked_again_smaller(
    tmp_path: Path, fake_api: FakeTradecloud, ca_file: Path, stores: list
) -> None:
    from tests.helpers.reconcile import order, put, stamp

    settings = settings_for(tmp_path, fake_api, ca_file)
    big = []
    for n in range(120):
        obj = order(n, stamp(n + 1))
        obj["buyerOrder"]["description"] = "x" * 25_000  # 100 of them: about 2.5 MB
        big.append(obj)
    put(fake_api, *big)
    store = open_for(settings, stores)
    client = TradecloudClient.from_settings(settings, max_answer_bytes=1 << 20)
    try:
        report = await reconcile(settings, store, since=SINCE, shipments=False, client=client)
    finally:
        await client.close()
    assert report.ok, report.error
    assert len(report.recovered) == 120
    limits = [call.body["limit"] for call in fake_api.routes("order-poll")]
    assert limits[:3] == [100, 50, 25] and set(limits[3:]) == {25}
