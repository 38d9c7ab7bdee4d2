"""For reconcile tests: orders and shipments changed at given times, their webhooks, and the
receiver that records what reconcile finds."""

from __future__ import annotations

import copy
import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from tcwebhook.config import (
    AuthSettings,
    ReconcileSettings,
    Settings,
    SinkSettings,
    StoreSettings,
    TradecloudSettings,
)
from tcwebhook.store import Store
from tests.helpers.fake_tradecloud import PASSWORD, USERNAME, FakeTradecloud
from tests.helpers.paths import SAMPLES

T = "2025-06-01T00:00:00.000Z"
TOKEN = "reconcile-test-token-0123"
_START = datetime(2025, 6, 1, tzinfo=UTC)
_ORDER = json.loads((SAMPLES / "order.json").read_text(encoding="utf-8"))
_SHIPMENT = json.loads((SAMPLES / "shipment.json").read_text(encoding="utf-8"))


def stamp(minutes: float) -> str:
    """An instant ``minutes`` after T, as Tradecloud writes it."""
    instant = _START + timedelta(minutes=minutes)
    return f"{instant:%Y-%m-%dT%H:%M:%S}.{instant.microsecond // 1000:03d}Z"


def order(number: int, updated: str, changed_line: int = 2) -> dict[str, Any]:
    """An order of three lines whose line ``changed_line`` (0-based) changed at ``updated``."""
    data = copy.deepcopy(_ORDER)
    data["id"] = f"order-{number:04d}"
    data["buyerOrder"]["purchaseOrderNumber"] = f"PO{number:06d}"
    data["lastUpdatedAt"] = updated
    for index, line in enumerate(data["lines"]):
        line["lastUpdatedAt"] = updated if index == changed_line else "2025-05-01T00:00:00Z"
    return data


def shipment(number: int, updated: str) -> dict[str, Any]:
    data = copy.deepcopy(_SHIPMENT)
    data["id"] = f"shipment-{number:04d}"
    data["supplierShipment"]["shipmentNumber"] = f"SN{number:06d}"
    data["meta"]["lastUpdatedAt"] = updated
    return data


def put(fake: FakeTradecloud, *objects: dict[str, Any]) -> None:
    for obj in objects:
        target = fake.shipments if obj["id"].startswith("shipment-") else fake.orders
        target[obj["id"]] = json.dumps(obj).encode()


def order_webhook(obj: dict[str, Any], message_id: str | None = None) -> bytes:
    """The webhook Tradecloud would have sent for the order's latest change."""
    affected = [line for line in obj["lines"] if line["lastUpdatedAt"] == obj["lastUpdatedAt"]]
    event = dict(obj, lines=affected)
    return json.dumps(
        {
            "eventName": "OrderLinesAcceptedBySupplier",
            "orderEvent": event,
            "meta": {"messageId": message_id or str(uuid.uuid4())},
        }
    ).encode()


def shipment_webhook(obj: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "eventName": "ShipmentReissuedBySupplier",
            "shipment": obj,
            "meta": {"messageId": str(uuid.uuid4())},
        }
    ).encode()


def settings_for(
    tmp_path: Path, fake: FakeTradecloud, ca: Path, *sinks: SinkSettings, **reconcile: Any
) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        auth=AuthSettings(type="bearer", token=TOKEN),
        sinks=sinks,
        tradecloud=TradecloudSettings(
            base_url=fake.base_url, username=USERNAME, password=PASSWORD, ca_file=ca
        ),
        reconcile=ReconcileSettings(**reconcile),
        store=StoreSettings(url=os.environ.get("TCWEBHOOK_STORE_URL")),  # see store_backend
    )


@dataclass
class Receiver:
    """The real receiver app, over TLS, on the same store reconcile writes to."""

    client: TestClient
    store: Store

    async def post(self, path: str, body: bytes) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        async with self.client.post(path, data=body, headers=headers) as response:
            assert response.status == 200, await response.text()
            answer: dict[str, Any] = await response.json()
            return answer
