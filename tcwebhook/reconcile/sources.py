"""The poll endpoints reconcile reads, and how their objects map onto stored events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tcwebhook.protocol import PAYLOAD_KEY_OF_KIND, EventKind, Resource

if TYPE_CHECKING:
    from tcwebhook.config import Settings
    from tcwebhook.tradecloud import PollEndpoint


@dataclass(frozen=True)
class PollSource:
    """One poll endpoint and how its objects map onto stored events."""

    endpoint: PollEndpoint
    resource: Resource
    recovered_kind: EventKind
    payload_key: str  # the key a webhook of this kind carries its object under
    change_kinds: tuple[str, ...]  # the stored kinds whose events carry this object's changes
    notification_kind: str  # GET notifications whose fetched object counts as known


def _values(*kinds: EventKind) -> tuple[str, ...]:
    return tuple(kind.value for kind in kinds)  # plain text for every store's driver


ORDERS = PollSource(
    "order-search/poll",
    "order",
    EventKind.ORDER_RECOVERED,
    PAYLOAD_KEY_OF_KIND[EventKind.ORDER],
    _values(EventKind.ORDER, EventKind.SINGLE_DELIVERY_ORDER, EventKind.ORDER_RECOVERED),
    EventKind.ORDER_NOTIFICATION.value,
)
SINGLE_DELIVERY_ORDERS = PollSource(
    "order-search/poll/single-delivery",
    "order",
    EventKind.ORDER_RECOVERED,
    PAYLOAD_KEY_OF_KIND[EventKind.SINGLE_DELIVERY_ORDER],
    ORDERS.change_kinds,
    ORDERS.notification_kind,
)
SHIPMENTS = PollSource(
    "shipment/poll",
    "shipment",
    EventKind.SHIPMENT_RECOVERED,
    PAYLOAD_KEY_OF_KIND[EventKind.SHIPMENT],
    _values(EventKind.SHIPMENT, EventKind.SHIPMENT_RECOVERED),
    EventKind.SHIPMENT_NOTIFICATION.value,
)


def poll_sources(settings: Settings, orders: bool, shipments: bool) -> list[PollSource]:
    """The endpoints to poll: orders in the configured delivery mode, and shipments."""
    sources = []
    if orders:
        single = settings.reconcile.delivery_mode == "single-delivery"
        sources.append(SINGLE_DELIVERY_ORDERS if single else ORDERS)
    if shipments:
        sources.append(SHIPMENTS)
    return sources
