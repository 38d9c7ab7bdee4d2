"""Shared pieces of the sample generator: templates, invented identities and a fixed clock."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any, Literal, TypeVar

import orjson

T = TypeVar("T")

BUYER_COMPANY_ID = "5f1c2a9e-7b34-4d8e-a1c6-3e9b0d2f7a41"  # Kestrel Marine Systems B.V.
SUPPLIER_COMPANY_ID = "b83e6d10-4c27-4f95-9a0e-61d5c8e2f3b7"  # Ostwald Praezisionsteile GmbH
BUYER_USER_ID = "2a9f6d03-e1b7-4c58-8d24-6b0e3f9a71c5"
SUPPLIER_USER_ID = "d5b08e37-6a1f-4c92-8e45-0c7b3a9f1d26"

# Fixed namespace so that every sample keeps the same messageId from one release to the next.
_NAMESPACE = uuid.UUID("8f0d7c52-3e41-4b6a-9d27-5c1e0a8b4f63")
# The first event of the order's life; later events follow at a steady pace.
_FIRST_EVENT = datetime(2025, 9, 2, 7, 5, 12, 318000, tzinfo=UTC)


@cache
def _template_bytes(name: str) -> bytes:
    return resources.files("tcwebhook.samples").joinpath(f"templates/{name}.json").read_bytes()


def template(name: str) -> dict[str, Any]:
    """A fresh, editable copy of a template (``order`` or ``shipment``)."""
    value: dict[str, Any] = orjson.loads(_template_bytes(name))
    return value


def clone(value: T) -> T:
    """A deep copy of JSON data: a round trip through orjson, several times cheaper than
    ``copy.deepcopy``, which took most of the time ``samples list`` spent on the catalog."""
    copied: T = orjson.loads(orjson.dumps(value))
    return copied


def event_time(index: int) -> str:
    """The timestamp of the index-th event: 2 h 17 min 3.141 s apart, so no two are equal."""
    instant = _FIRST_EVENT + index * timedelta(hours=2, minutes=17, seconds=3, milliseconds=141)
    return instant.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def after(timestamp: str, milliseconds: int) -> str:
    instant = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    later = instant + timedelta(milliseconds=milliseconds)
    return later.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def shift_date(value: str, days: int) -> str:
    return (date.fromisoformat(value) + timedelta(days=days)).isoformat()


def actor(event_name: str) -> Literal["buyer", "supplier"]:
    """Who caused the event: the ``By…`` suffix; events without one come from the supplier."""
    return "buyer" if event_name.endswith("ByBuyer") else "supplier"


def message_meta(sample_name: str, event_name: str, created: str) -> dict[str, Any]:
    """The webhook ``meta`` of docs/tradecloud.md#webhook-bodies, stable per sample."""
    by_buyer = actor(event_name) == "buyer"
    return {
        "messageId": str(uuid.uuid5(_NAMESPACE, sample_name)),
        "source": {
            "traceId": str(uuid.uuid5(_NAMESPACE, f"trace/{event_name}")),
            "userId": BUYER_USER_ID if by_buyer else SUPPLIER_USER_ID,
            "companyId": BUYER_COMPANY_ID if by_buyer else SUPPLIER_COMPANY_ID,
        },
        "createdDateTime": after(created, 287),
    }
