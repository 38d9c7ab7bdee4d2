"""For replay tests: the receiver app it replays to, and small fake endpoints."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp.test_utils import TestServer

from tcwebhook.config import Settings
from tcwebhook.replay import Target
from tcwebhook.store import SqliteStore

TOKEN = "replay-test-token-5b1f0e"
AUTHORIZATION = f"Bearer {TOKEN}"

ServerFactory = Callable[..., Awaitable[TestServer]]


@dataclass
class Receiver:
    """The real ``serve`` app, in-process over TLS, with its store."""

    server: TestServer
    store: SqliteStore
    settings: Settings
    ca_file: Path

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    def target(self, **changes: object) -> Target:
        paths = self.settings.server.paths
        values: dict[str, object] = {
            "order_url": self.url(paths.order),
            "shipment_url": self.url(paths.shipment),
            "ca_file": self.ca_file,
            "authorization": AUTHORIZATION,
        }
        values.update(changes)
        return Target(**values)  # type: ignore[arg-type]


@dataclass
class Fake:
    """A fake endpoint answering from a script of status codes; records what it received."""

    server: TestServer
    statuses: list[int]
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return str(self.server.make_url("/hook"))
