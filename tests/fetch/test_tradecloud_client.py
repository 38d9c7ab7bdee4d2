"""The Tradecloud API client against the fake API: authentication, retries, errors, documents."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest

from tcwebhook.config import load_settings
from tcwebhook.errors import (
    EXIT_CHECK_FAILED,
    EXIT_USAGE,
    ApiAccessDenied,
    ApiCredentialsError,
    ApiNotFound,
    ApiUnavailable,
)
from tcwebhook.tradecloud import TokenCache, Tokens, TradecloudClient, jwt_expiry
from tests.helpers.fake_tradecloud import (
    DOCUMENTS_ORDER_ID,
    FORBIDDEN_ORDER_ID,
    ORDER_ID,
    PASSWORD,
    SHIPMENT_ID,
    USERNAME,
    FakeTradecloud,
    make_jwt,
)

DOCUMENT_ID = "1c9a7b52-3d84-4e06-b1f7-95a2c4e8d013"


def client(
    fake: FakeTradecloud, ca_file: Path, cache: Path | None = None, **options: object
) -> TradecloudClient:
    return TradecloudClient(
        fake.base_url,
        options.pop("username", USERNAME),  # type: ignore[arg-type]
        options.pop("password", PASSWORD),  # type: ignore[arg-type]
        ca_file=ca_file,
        token_cache=TokenCache(cache) if cache else None,
        **options,  # type: ignore[arg-type]
    )


def routes(fake: FakeTradecloud) -> list[str]:
    return [call.route for call in fake.calls]


async def test_login_takes_tokens_from_headers_and_caches_them_0600(
    fake_api: FakeTradecloud, ca_file: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "data" / "tokens.json"
    async with client(fake_api, ca_file, cache) as api:
        order = await api.get_order(ORDER_ID)
    assert order["id"] == ORDER_ID and len(order["lines"]) == 3
    login, fetch = fake_api.calls
    assert login.route == "login" and login.authorization.startswith("Basic ")
    assert fetch.authorization.startswith("Bearer ") and fetch.authorization[7:] in (
        fake_api.access_tokens
    )
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o600
    async with client(fake_api, ca_file, cache) as api:
        await api.get_shipment(SHIPMENT_ID)
    assert routes(fake_api) == ["login", "order", "shipment"]  # the cache spared a login


async def test_expired_access_token_is_refreshed_with_only_the_refresh_token(
    fake_api: FakeTradecloud, ca_file: Path
) -> None:
    async with client(fake_api, ca_file) as api:
        await api.get_order(ORDER_ID)
        fake_api.expire_access_tokens()
        order = await api.get_order(ORDER_ID)
        # The refresh answer carries a "Bearer " prefix; the client must strip it.
        await api.get_shipment(SHIPMENT_ID)
    assert order["id"] == ORDER_ID
    assert routes(fake_api) == ["login", "order", "order", "refresh", "order", "shipment"]
    refresh = fake_api.routes("refresh")[0]
    assert refresh.authorization is None and refresh.refresh_token


async def test_token_expiring_within_five_minutes_is_refreshed_before_use(
    fake_api: FakeTradecloud, ca_file: Path
) -> None:
    fake_api.access_lifetime = 120  # shorter than the five-minute margin
    async with client(fake_api, ca_file) as api:
        await api.get_order(ORDER_ID)
        await api.get_order(ORDER_ID)
    assert routes(fake_api) == ["login", "order", "refresh", "order"]


async def test_refused_refresh_token_falls_back_to_login(
    fake_api: FakeTradecloud, ca_file: Path
) -> None:
    async with client(fake_api, ca_file) as api:
        await api.get_order(ORDER_ID)
        old_refresh = api.auth.tokens.refresh if api.auth.tokens else ""
        fake_api.expire_access_tokens()
        await api.get_order(ORDER_ID)  # refresh: the old refresh token is now used up
        fake_api.expire_access_tokens()
        api.auth.tokens = Tokens(api.auth.tokens.access, old_refresh, None, None)  # type: ignore[union-attr]
        await api.get_order(ORDER_ID)
    assert routes(fake_api) == [
        *["login", "order"],
        *["order", "refresh", "order"],  # 401, refresh, retry
        *["order", "refresh", "login", "order"],  # 401, used-up refresh token refused, login
    ]


async def test_corrupt_cache_is_ignored_and_replaced(
    fake_api: FakeTradecloud, ca_file: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "tokens.json"
    cache.write_text("{not json", encoding="utf-8")
    async with client(fake_api, ca_file, cache) as api:
        await api.get_order(ORDER_ID)
    assert routes(fake_api) == ["login", "order"]
    assert json.loads(cache.read_text(encoding="utf-8"))  # a valid cache now


async def test_expired_cache_logs_in_without_trying_the_dead_refresh_token(
    fake_api: FakeTradecloud, ca_file: Path, tmp_path: Path
) -> None:
    cache = TokenCache(tmp_path / "tokens.json")
    stale = Tokens(make_jwt(USERNAME, -60), make_jwt(USERNAME, -30), time.time() - 60, None)
    stale = Tokens(stale.access, stale.refresh, stale.access_expires, jwt_expiry(stale.refresh))
    api = client(fake_api, ca_file)
    cache.save(api.auth.cache_key, stale)
    async with client(fake_api, ca_file, tmp_path / "tokens.json") as api:
        await api.get_order(ORDER_ID)
    assert routes(fake_api) == ["login", "order"]


async def test_wrong_password_is_a_credentials_error_without_the_password(
    fake_api: FakeTradecloud, ca_file: Path
) -> None:
    async with client(fake_api, ca_file, password="hunter2-wrong") as api:
        with pytest.raises(ApiCredentialsError) as caught:
            await api.get_order(ORDER_ID)
    message = str(caught.value)
    assert "401" in message and USERNAME in message and "hunter2" not in message
    assert caught.value.exit_code == EXIT_USAGE


async def test_missing_credentials_say_which_variables_to_set(
    fake_api: FakeTradecloud, ca_file: Path
) -> None:
    async with client(fake_api, ca_file, username=None, password=None) as api:
        with pytest.raises(ApiCredentialsError, match="TRADECLOUD_USERNAME"):
            await api.get_order(ORDER_ID)
    assert fake_api.calls == []


async def test_forbidden_and_unknown_ids(fake_api: FakeTradecloud, ca_file: Path) -> None:
    async with client(fake_api, ca_file) as api:
        with pytest.raises(ApiAccessDenied, match="403"):
            await api.get_order(FORBIDDEN_ORDER_ID)
        with pytest.raises(ApiNotFound, match="404") as caught:
            await api.get_shipment("no-such-shipment")
    assert caught.value.exit_code == EXIT_CHECK_FAILED


async def test_ids_are_percent_encoded_in_paths(fake_api: FakeTradecloud, ca_file: Path) -> None:
    async with client(fake_api, ca_file) as api:
        order = await api.get_order(DOCUMENTS_ORDER_ID)
    assert order["id"] == DOCUMENTS_ORDER_ID
    assert fake_api.routes("order")[0].path.endswith("-PO%2F2025%200418")


async def test_503_then_200_is_retried(fake_api: FakeTradecloud, ca_file: Path) -> None:
    fake_api.fail_next["order"] = [503, 429]
    async with client(fake_api, ca_file, backoff=0.01) as api:
        order = await api.get_order(ORDER_ID)
    assert order["id"] == ORDER_ID
    assert routes(fake_api) == ["login", "order", "order", "order"]


async def test_unavailable_after_every_retry(fake_api: FakeTradecloud, ca_file: Path) -> None:
    fake_api.fail_next["login"] = [503] * 10
    async with client(fake_api, ca_file, backoff=0.01, attempts=3) as api:
        with pytest.raises(ApiUnavailable, match="3 times") as caught:
            await api.get_order(ORDER_ID)
    assert "HTTP 503" in str(caught.value) and PASSWORD not in str(caught.value)
    assert routes(fake_api) == ["login"] * 3


async def test_connection_refused_is_unavailable(ca_file: Path, unused_tcp_port: int) -> None:
    fake = FakeTradecloud(base_url=f"https://127.0.0.1:{unused_tcp_port}/v2")
    async with client(fake, ca_file, backoff=0.01, attempts=2) as api:
        with pytest.raises(ApiUnavailable, match="2 times") as caught:
            await api.get_order(ORDER_ID)
    # host and port, not the repr of aiohttp's SSL context
    assert f"cannot connect to 127.0.0.1:{unused_tcp_port}" in str(caught.value)
    assert "SSLContext" not in str(caught.value)


async def test_untrusted_certificate_points_at_ca_file(fake_api: FakeTradecloud) -> None:
    async with TradecloudClient(fake_api.base_url, USERNAME, PASSWORD) as api:
        with pytest.raises(ApiUnavailable, match="--ca-file"):
            await api.get_order(ORDER_ID)
    assert fake_api.calls == []


async def test_document_download_uses_metadata_then_presigned_url_without_auth(
    fake_api: FakeTradecloud, ca_file: Path, tmp_path: Path
) -> None:
    async with client(fake_api, ca_file) as api:
        path = await api.download_document(DOCUMENT_ID, tmp_path)
        named = await api.download_document(DOCUMENT_ID, tmp_path / "chosen.pdf")
    assert path == tmp_path / "order-confirmation-SO-88121.pdf"
    assert path.read_bytes() == named.read_bytes() == fake_api.documents[DOCUMENT_ID][2]
    downloads = fake_api.routes("s3")
    assert len(downloads) == 2 and all(call.authorization is None for call in downloads)
    assert fake_api.routes("metadata")[0].authorization.startswith("Bearer ")


async def test_refused_presigned_url_falls_back_to_streaming(
    fake_api: FakeTradecloud, ca_file: Path, tmp_path: Path
) -> None:
    fake_api.fail_next["s3"] = [403]
    async with client(fake_api, ca_file) as api:
        path = await api.download_document(DOCUMENT_ID, tmp_path)
    assert path.read_bytes() == fake_api.documents[DOCUMENT_ID][2]
    assert routes(fake_api)[-2:] == ["s3", "stream"]
    assert not list(tmp_path.glob(".*.part"))


async def test_url_documents_and_metadata_only_references(
    fake_api: FakeTradecloud, ca_file: Path, tmp_path: Path
) -> None:
    async with client(fake_api, ca_file) as api:
        order = await api.get_order(DOCUMENTS_ORDER_ID)
        line_documents = order["lines"][0]["buyerLine"]["documents"]
        saved = await api.download_reference(line_documents[0], tmp_path)
        nothing = await api.download_reference(line_documents[1], tmp_path)
    assert saved == tmp_path / "drawing-DWG-4411.txt"
    assert saved.read_bytes() == fake_api.files["drawing-DWG-4411.txt"]
    assert nothing is None
    assert fake_api.routes("files")[0].authorization is None


async def test_logout_sends_only_the_refresh_token_and_forgets_tokens(
    fake_api: FakeTradecloud, ca_file: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "tokens.json"
    async with client(fake_api, ca_file, cache) as api:
        await api.get_order(ORDER_ID)
        refresh_token = api.auth.tokens.refresh if api.auth.tokens else ""
        result = await api.logout()
        again = await api.logout()
    assert result.outcome == "logged-out" and again.outcome == "not-logged-in"
    call = fake_api.routes("logout")[0]
    assert call.authorization is None and call.refresh_token == refresh_token
    assert refresh_token not in fake_api.refresh_tokens
    assert not cache.exists()  # no session left: no file that looks like a token cache


async def test_at_most_ten_requests_per_second(fake_api: FakeTradecloud, ca_file: Path) -> None:
    async with client(fake_api, ca_file) as api:
        started = time.monotonic()
        for _ in range(11):
            await api.get_order(ORDER_ID)
        elapsed = time.monotonic() - started
    assert len(fake_api.calls) == 12
    assert elapsed >= 1.05  # 12 request starts, at least 0.1 s apart


async def test_from_settings_falls_back_to_tradecloud_environment_variables(
    fake_api: FakeTradecloud, ca_file: Path, tmp_path: Path
) -> None:
    settings = load_settings(
        None,
        {"tradecloud.base_url": fake_api.base_url, "tradecloud.ca_file": str(ca_file)},
        environ={"TCWEBHOOK_DATA_DIR": str(tmp_path / "data")},
    )
    environ = {"TRADECLOUD_USERNAME": USERNAME, "TRADECLOUD_PASSWORD": PASSWORD}
    async with TradecloudClient.from_settings(settings, environ=environ) as api:
        await api.get_order(ORDER_ID)
    assert (tmp_path / "data" / "tradecloud-tokens.json").is_file()


def test_jwt_expiry_reads_exp_without_verifying() -> None:
    token = make_jwt(USERNAME, 100)
    expiry = jwt_expiry(token)
    assert expiry is not None and abs(expiry - (time.time() + 100)) < 2
    assert jwt_expiry("opaque-token") is None
    assert jwt_expiry("a.!!!.c") is None
