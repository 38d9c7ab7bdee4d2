"""An inspector app in-process over a real store, and events to fill it with."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tcwebhook.config import AuthSettings, Settings, StoreSettings
from tcwebhook.inspector import create_app
from tcwebhook.store import Store, open_store
from tests.helpers.inspector import TOKEN


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        auth=AuthSettings(type="bearer", token=TOKEN),
        store=StoreSettings(url=os.environ.get("TCWEBHOOK_STORE_URL")),  # see store_backend
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    opened = open_store(settings.store_url)
    yield opened
    opened.close()


@pytest.fixture
async def inspector(
    aiohttp_client: Any, settings: Settings, store: Store
) -> AsyncIterator[TestClient]:
    client: TestClient = await aiohttp_client(create_app(settings, store))
    yield client
