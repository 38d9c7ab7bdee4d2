"""``tcwebhook replay`` and ``tcwebhook samples`` as a user runs them: real subprocesses."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from tcwebhook import samples
from tcwebhook.config import load_settings
from tcwebhook.server.app import create_app
from tcwebhook.server.plan import plan
from tcwebhook.server.tls import server_context
from tcwebhook.store import open_store
from tests.helpers.cli import Result as CliResult
from tests.helpers.replay import TOKEN, Fake, Receiver

Cli = Callable[..., Awaitable[CliResult]]
FakeFactory = Callable[[list[int]], Awaitable[Fake]]


def one_line_error(result: CliResult, *fragments: str) -> None:
    """Exit 2 with exactly one readable line on stderr, and no traceback."""
    assert result.code == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def flags(receiver: Receiver) -> list[str]:
    url = receiver.url(receiver.settings.server.paths.order)
    return ["--url", url, "--ca-file", str(receiver.ca_file), "--token", TOKEN]


@pytest.fixture
async def local_serve(tmp_path: Path) -> AsyncIterator[tuple[int, Path]]:
    """``serve`` in development mode on a free port, as the config in this test's env has it."""
    settings = load_settings()
    serve_plan = plan(settings)
    store = open_store(serve_plan.settings.store_url)
    server = TestServer(create_app(serve_plan.settings, store), host="127.0.0.1")
    await server.start_server(ssl=server_context(serve_plan.certificates))
    yield server.port or 0, settings.data_dir
    await server.close()
    store.close()


async def test_no_flags_reaches_the_local_dev_server(
    cli: Cli, local_serve: tuple[int, Path]
) -> None:
    port, data_dir = local_serve
    env = {"TCWEBHOOK_SERVER_PORT": str(port)}
    result = await cli("replay", "order-issued", env=env)
    assert result.code == 0, result
    assert "200" in result.stdout and "delivered" in result.stdout
    assert "order-issued (OrderIssuedByBuyer)" in result.stdout
    assert (data_dir / "token").read_text().strip() not in result.stdout + result.stderr
    load = await cli("replay", "--count", "60", "--concurrency", "6", "shipment-issued", env=env)
    assert load.code == 0, load
    assert "60 of 60" in load.stdout and "p95" in load.stdout and "p99" in load.stdout
    store = open_store(f"sqlite:///{data_dir / 'events.db'}")
    try:
        assert store.count() == 61
    finally:
        store.close()


async def test_replay_one_sample_exit_0(cli: Cli, receiver: Receiver) -> None:
    result = await cli("replay", "order-lines-accepted", *flags(receiver), "--show-response")
    assert result.code == 0, result
    assert "delivered" in result.stdout and '"stored"' in result.stdout
    assert receiver.store.count() == 1


async def test_bearer_from_command(cli: Cli, receiver: Receiver) -> None:
    url = receiver.url(receiver.settings.server.paths.order)
    target = ["--url", url, "--ca-file", str(receiver.ca_file)]
    result = await cli("replay", "order-issued", *target, "--bearer-from-command", f"echo {TOKEN}")
    assert result.code == 0, result
    assert receiver.store.count() == 1
    failed = await cli("replay", "order-issued", *target, "--bearer-from-command", "false")
    one_line_error(failed, "--bearer-from-command", "exited with code 1")
    assert TOKEN not in failed.stderr + failed.stdout


async def test_json_output_for_scripts(cli: Cli, receiver: Receiver) -> None:
    result = await cli(
        "replay",
        "shipment-issued",
        "--count",
        "20",
        "--concurrency",
        "4",
        "--json",
        *flags(receiver),
    )
    assert result.code == 0, result
    data = json.loads(result.stdout)
    assert data["sent"] == data["delivered"] == 20 and data["allDelivered"]
    assert data["statusCounts"] == {"200": 20}
    assert set(data["latencyMs"]) == {"p50", "p95", "p99", "max"}
    first = data["results"][0]
    assert first["verdict"] == "delivered" and first["tradecloud"] == "delivered"
    assert TOKEN not in result.stdout


async def test_files_directories_and_stdin(cli: Cli, receiver: Receiver, tmp_path: Path) -> None:
    folder = tmp_path / "events"
    written = await cli(
        "samples", "write", str(folder), "-n", "shipment-issued", "-n", "order-issued"
    )
    assert written.code == 0, written
    body = json.dumps(samples.get_sample("order-lines-rejected").body).encode()
    result = await cli("replay", str(folder), *flags(receiver))
    assert result.code == 0, result
    result = await cli(
        "replay", "-", "--set", 'orderEvent.buyerOrder.purchaseOrderNumber="X-1"',
        *flags(receiver), stdin=body,
    )  # fmt: skip
    assert result.code == 0, result
    names = [event.event_name for event in reversed(receiver.store.list_events())]
    # the directory in name order, then standard input
    assert names == [
        "OrderIssuedByBuyer",
        "ShipmentIssuedBySupplier",
        "OrderLinesRejectedBySupplier",
    ]
    assert receiver.store.list_events()[0].number == "X-1"


async def test_500_exit_1_with_warning(cli: Cli, fake_endpoint: FakeFactory, ca_file: Path) -> None:
    fake = await fake_endpoint([500])
    result = await cli(
        "replay", "order-issued", "--url", fake.url, "--ca-file", str(ca_file), "--retry"
    )
    assert result.code == 1, result
    assert "dropped, not retried" in result.stdout
    assert "never retries a 500" in result.stderr and "503" in result.stderr
    assert len(fake.requests) == 1


async def test_retry_503_twice_then_200(
    cli: Cli, fake_endpoint: FakeFactory, ca_file: Path
) -> None:
    fake = await fake_endpoint([503, 503, 200])
    result = await cli(
        "replay", "order-issued", "--url", fake.url, "--ca-file", str(ca_file),
        "--retry", "--max-delay", "0.05",
    )  # fmt: skip
    assert result.code == 0, result
    assert "after 3 attempts" in result.stdout
    assert len(fake.requests) == 3


async def test_get_mode_from_the_cli(cli: Cli, receiver: Receiver) -> None:
    result = await cli(
        "replay", "shipment", "--method", "get", "--id-in", "query", *flags(receiver)
    )
    assert result.code == 0, result
    (event,) = receiver.store.list_events()
    assert event.kind == "shipment_notification"


async def test_insecure_warns(cli: Cli, fake_endpoint: FakeFactory) -> None:
    fake = await fake_endpoint([200])
    result = await cli("replay", "order-issued", "--url", fake.url, "--insecure")
    assert result.code == 0, result
    assert "warning" in result.stderr and "not verified" in result.stderr


async def test_usage_and_environment_errors(
    cli: Cli, fake_endpoint: FakeFactory, tmp_path: Path, free_port: int, ca_file: Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"eventName": "OrderIssuedByBuyer",\n  "orderEvent": {,}}')
    url = f"https://127.0.0.1:{free_port}/hook"
    fake = await fake_endpoint([200])
    cases = [
        (["replay", "missing.json", "--url", url], ["missing.json", "does not exist"]),
        (["replay", str(bad), "--url", url], [f"{bad}:2:", "invalid JSON"]),
        (["replay", "order-isued", "--url", url], ["order-isued", "order-issued"]),
        (
            ["replay", "order-issued", "--url", url, "--ca-file", str(ca_file)],
            [f"127.0.0.1:{free_port}"],
        ),
        (["replay", "order-issued", "--url", fake.url], ["TLS verification", "--ca-file"]),
        (["replay", "order-issued", "--url", "http://127.0.0.1/hook"], ["https://"]),
        (["replay", "order-issued", "--url", url, "--set", "novalue"], ["PATH=VALUE"]),
        (["replay", "order", "--url", url, "--ca-file", str(ca_file)], ["--method GET"]),
        (["samples", "show", "shipment-isued"], ["shipment-issued"]),
    ]
    results = await asyncio.gather(*(cli(*args) for args, _ in cases))
    for result, (_, fragments) in zip(results, cases, strict=True):
        one_line_error(result, *fragments)
    assert not fake.requests


async def test_samples_commands(cli: Cli, tmp_path: Path) -> None:
    listed = await cli("samples", "list", "--json")
    assert listed.code == 0
    rows = json.loads(listed.stdout)
    assert len(rows) == 98 and all(set(row) == {"name", "kind", "eventName"} for row in rows)
    assert {"name": "order", "kind": "order_object", "eventName": None} in rows
    table = await cli("samples", "list")
    assert (
        "single-delivery-order-lines-delivery-schedule-logistics-updated-by-supplier"
        in table.stdout
    )
    shown = await cli("samples", "show", "order-documents-attached-by-supplier")
    assert (
        json.loads(shown.stdout) == samples.get_sample("order-documents-attached-by-supplier").body
    )
    raw = await cli("samples", "show", "shipment-issued", "--json")
    assert raw.stdout.count("\n") == 1 and json.loads(raw.stdout)["eventName"]
    out = tmp_path / "all"
    written = await cli("samples", "write", str(out))
    assert written.code == 0 and len(os.listdir(out)) == 98
    again = await cli("samples", "write", str(out))
    one_line_error(again, "--overwrite")
