"""The receiver app in-process over real TLS: what the ``make_receiver`` fixture returns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp.test_utils import TestClient

from tcwebhook.server.app import RequestLog
from tcwebhook.store import SqliteStore

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_BODY = 256 * 1024


@dataclass
class Receiver:
    client: TestClient
    store: SqliteStore
    logs: list[RequestLog] = field(default_factory=list)

    async def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> Any:
        merged = {**AUTH, "Content-Type": "application/json", **(headers or {})}
        return await self.client.post(path, data=body, headers=merged)


MakeReceiver = Callable[..., Awaitable[Receiver]]
