"""Fixtures for the fetch tests: the fake Tradecloud API over TLS and a way to run the CLI."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.fake_tradecloud import PASSWORD, USERNAME, FakeTradecloud

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.fixture
def ca_file(tls_ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "fake-ca.pem"
    tls_ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
async def fake_api(aiohttp_server: Any, server_ssl_ctx: Any) -> FakeTradecloud:
    """The fake API with the shared samples, on an ephemeral loopback port, over TLS."""
    fake = FakeTradecloud.with_samples()
    server = await aiohttp_server(fake.app(), ssl=server_ssl_ctx)
    fake.base_url = f"https://127.0.0.1:{server.port}/v2"
    return fake


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str
    stdout_bytes: bytes


CliRunner = Callable[..., Awaitable[Result]]


@pytest.fixture
def cli(fake_api: FakeTradecloud, ca_file: Path) -> CliRunner:
    """Run ``tcwebhook`` in a real subprocess against the fake API (the loop keeps serving)."""

    async def run(*args: str, env: dict[str, str] | None = None, api: bool = True) -> Result:
        environment = {
            **os.environ,
            "TRADECLOUD_USERNAME": USERNAME,
            "TRADECLOUD_PASSWORD": PASSWORD,
            "PYTHONPATH": str(REPOSITORY),
            "COLUMNS": "160",
        }
        environment.update(env or {})
        flags = ["--base-url", fake_api.base_url, "--ca-file", str(ca_file)] if api else []
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tcwebhook",
            *args,
            *flags,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=environment,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode is not None
        return Result(process.returncode, stdout.decode(), stderr.decode(), stdout)

    return run
