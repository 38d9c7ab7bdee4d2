"""``tcwebhook fetch`` and ``tcwebhook logout`` as real subprocesses against the fake API."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from tests.helpers.cli import CliRunner, one_error_line
from tests.helpers.fake_tradecloud import (
    DOCUMENTS_ORDER_ID,
    ORDER_ID,
    PASSWORD,
    SHIPMENT_ID,
    FakeTradecloud,
)
from tests.helpers.paths import SAMPLES


async def test_order_shows_changed_line_and_second_run_reuses_cached_login(
    cli: CliRunner, fake_api: FakeTradecloud, tmp_path: Path
) -> None:
    first = await cli("fetch", "order", ORDER_ID)
    assert first.code == 0, first.stderr
    assert "Purchase order PO2025000417" in first.stdout
    assert "1 of 3 lines changed" in first.stdout
    assert "0003" in first.stdout and "Hatch hinge" in first.stdout
    assert "Round tube" not in first.stdout  # line 0001 did not change
    cache = tmp_path / "data" / "tradecloud-tokens.json"
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o600
    second = await cli("fetch", "order", ORDER_ID)
    assert second.code == 0
    assert fake_api.counts["login"] == 1 and fake_api.counts["order"] == 2
    tokens = cache.read_text(encoding="utf-8")
    assert PASSWORD not in tokens
    for token in fake_api.access_tokens:  # tokens never reach the terminal
        assert token not in first.stdout + first.stderr + second.stdout + second.stderr


async def test_order_json_holds_only_selected_lines(cli: CliRunner) -> None:
    result = await cli("fetch", "order", ORDER_ID, "--json")
    assert result.code == 0, result.stderr
    order = json.loads(result.stdout)
    assert [line["buyerLine"]["position"] for line in order["lines"]] == ["0003"]
    assert order["id"] == ORDER_ID and order["version"] == 4
    everything = json.loads((await cli("fetch", "order", ORDER_ID, "--json", "--all")).stdout)
    assert len(everything["lines"]) == 3


async def test_raw_prints_the_api_response_untouched(cli: CliRunner) -> None:
    result = await cli("fetch", "shipment", SHIPMENT_ID, "--raw")
    assert result.code == 0
    assert result.stdout_bytes == (SAMPLES / "shipment.json").read_bytes()


async def test_shipment_since_and_all(cli: CliRunner) -> None:
    default = await cli("fetch", "shipment", SHIPMENT_ID, "--json")
    shipment = json.loads(default.stdout)
    assert shipment["lines"] == []
    assert [line["purchaseOrderLinePosition"] for line in shipment["loadCarriers"][0]["lines"]] == [
        "0001"
    ]
    since = await cli("fetch", "shipment", SHIPMENT_ID, "--since", "2025-07-01T00:00:00Z")
    assert since.code == 0
    assert "2 of 2 lines updated after 2025-07-01T00:00:00Z" in since.stdout
    every = await cli("fetch", "shipment", SHIPMENT_ID, "--all")
    assert "MSKU1234565" in every.stdout and "loose" in every.stdout
    assert "unchanged" in every.stdout


async def test_wrong_password_exits_2_with_one_line(cli: CliRunner) -> None:
    result = await cli(
        "fetch", "order", ORDER_ID, env={"TRADECLOUD_PASSWORD": "wrong-secret-value"}
    )
    assert result.code == 2
    line = one_error_line(result.stderr)
    assert "rejected the login" in line
    assert "wrong-secret-value" not in result.stderr + result.stdout


async def test_unknown_order_exits_1(cli: CliRunner) -> None:
    result = await cli("fetch", "order", "no-such-order")
    assert result.code == 1
    assert "404" in one_error_line(result.stderr)


async def test_503_then_200_succeeds(cli: CliRunner, fake_api: FakeTradecloud) -> None:
    fake_api.fail_next["order"] = [503]
    result = await cli("fetch", "order", ORDER_ID)
    assert result.code == 0, result.stderr
    assert fake_api.counts["order"] == 2


async def test_bad_since_is_a_usage_error(cli: CliRunner) -> None:
    result = await cli("fetch", "order", ORDER_ID, "--since", "yesterday")
    assert result.code == 2
    assert "--since" in one_error_line(result.stderr)


async def test_credentials_from_config_file_interpolation(
    cli: CliRunner, tmp_path: Path, fake_api: FakeTradecloud
) -> None:
    config = tmp_path / "tcwebhook.yaml"
    config.write_text(
        "tradecloud:\n  username: ${TC_USER}\n  password: ${TC_PASS}\n", encoding="utf-8"
    )
    result = await cli(
        "fetch",
        "order",
        ORDER_ID,
        env={
            "TRADECLOUD_USERNAME": "",
            "TRADECLOUD_PASSWORD": "",
            "TC_USER": fake_api.username,
            "TC_PASS": fake_api.password,
        },
    )
    assert result.code == 0, result.stderr


async def test_document_download_and_order_documents(
    cli: CliRunner, fake_api: FakeTradecloud, tmp_path: Path
) -> None:
    target = tmp_path / "confirmation.pdf"
    result = await cli(
        "fetch", "document", "1c9a7b52-3d84-4e06-b1f7-95a2c4e8d013", "-o", str(target)
    )
    assert result.code == 0, result.stderr
    assert target.read_bytes().startswith(b"%PDF")
    folder = tmp_path / "documents"
    result = await cli("fetch", "order", DOCUMENTS_ORDER_ID, "--documents", str(folder))
    assert result.code == 0, result.stderr
    assert sorted(p.name for p in folder.iterdir()) == [
        "drawing-DWG-4411.txt",
        "order-confirmation-SO-88121.pdf",
    ]
    assert "metadata only" in result.stdout


async def test_logout_ends_the_session(
    cli: CliRunner, fake_api: FakeTradecloud, tmp_path: Path
) -> None:
    await cli("fetch", "order", ORDER_ID)
    result = await cli("logout")
    assert result.code == 0 and "Logged out" in result.stdout
    assert fake_api.counts["logout"] == 1 and fake_api.refresh_tokens == {}
    assert not (tmp_path / "data" / "tradecloud-tokens.json").exists()


async def test_plain_http_base_url_is_refused_unless_insecure(
    cli: CliRunner, aiohttp_server: Any, tmp_path: Path
) -> None:
    plain = FakeTradecloud.with_samples()
    server = await aiohttp_server(plain.app())
    plain.base_url = f"http://127.0.0.1:{server.port}/v2"
    refused = await cli("fetch", "order", ORDER_ID, "--base-url", plain.base_url, api=False)
    assert refused.code == 2
    line = one_error_line(refused.stderr)
    assert "plain HTTP" in line and "--insecure" in line
    assert plain.calls == []  # not even the login went out
    config = tmp_path / "tcwebhook.yaml"
    config.write_text(f"tradecloud:\n  base_url: {plain.base_url}\n", encoding="utf-8")
    from_file = await cli("fetch", "order", ORDER_ID, "--config", str(config), api=False)
    assert from_file.code == 2 and "--insecure" in one_error_line(from_file.stderr)
    allowed = await cli(
        "fetch", "order", ORDER_ID, "--base-url", plain.base_url, "--insecure", api=False
    )
    assert allowed.code == 0, allowed.stderr
    assert "unencrypted" in allowed.stderr and PASSWORD not in allowed.stderr


async def test_relative_data_dir_flag_is_relative_to_the_working_directory(
    cli: CliRunner, tmp_path: Path
) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    config = etc / "tcwebhook.yaml"
    config.write_text("data_dir: ./from-file\n", encoding="utf-8")
    result = await cli("fetch", "order", ORDER_ID, "-c", str(config), "--data-dir", "here")
    assert result.code == 0, result.stderr
    assert (tmp_path / "here" / "tradecloud-tokens.json").is_file()
    assert not (etc / "here").exists() and not (etc / "from-file").exists()
    logout = await cli("logout", "-c", str(config), "--data-dir", "here")
    assert logout.code == 0 and "Logged out" in logout.stdout
