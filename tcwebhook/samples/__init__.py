"""The built-in catalog of sample webhooks: one per Tradecloud event name, plus full API objects.

Naming rule: a sample's name is its event name in kebab-case, with the trailing ``-by-buyer`` or
``-by-supplier`` dropped unless the same event also exists for the other party. Single-delivery
samples get the prefix ``single-delivery-``. So ``OrderIssuedByBuyer`` is ``order-issued``,
``OrderLinesAcceptedBySupplier`` is ``order-lines-accepted`` (and
``single-delivery-order-lines-accepted``), ``OrderDocumentsAttachedBySupplier`` keeps its suffix
(``order-documents-attached-by-supplier``) because the buyer can attach documents too, and
``ShipmentIssuedBySupplier`` is ``shipment-issued``. The full objects as the API returns them are
``order`` and ``shipment``.

Samples are generated from two templates (an order and a shipment of invented companies) so that
each event carries the lines, statuses and requests that fit it.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import orjson

from tcwebhook import protocol
from tcwebhook.errors import ReplaySourceError, UnknownSample
from tcwebhook.samples.common import clone

# Webhook samples use the event kinds of `tcwebhook events`; the full API objects have their own.
Kind = Literal[
    "order",
    "single_delivery_order",
    "order_documents",
    "shipment",
    "order_object",
    "shipment_object",
]

PAYLOAD_KEY_OF_KIND: dict[str, str | None] = {
    **{kind.value: key for kind, key in protocol.PAYLOAD_KEY_OF_KIND.items()},
    "order_object": None,
    "shipment_object": None,
}


@dataclass(frozen=True)
class Sample:
    """One catalog entry: a webhook body, or a full order/shipment as the API returns it."""

    name: str
    kind: Kind
    event_name: str | None
    _body: dict[str, Any]

    @property
    def body(self) -> dict[str, Any]:
        """A fresh copy of the body, safe to edit."""
        return clone(self._body)

    @property
    def is_webhook(self) -> bool:
        return self.event_name is not None


def sample_name(event_name: str, family: tuple[str, ...], prefix: str = "") -> str:
    """The catalog name of ``event_name`` by the naming rule (see the module docstring)."""
    for mine, other in (("ByBuyer", "BySupplier"), ("BySupplier", "ByBuyer")):
        if event_name.endswith(mine) and event_name[: -len(mine)] + other not in family:
            event_name = event_name[: -len(mine)]
    return prefix + re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", event_name).lower()


@cache
def catalog() -> tuple[Sample, ...]:
    """Every sample, in a stable order: order events, single-delivery, documents, shipments."""
    from tcwebhook.events import (
        ORDER_DOCUMENTS_EVENT_NAMES,
        ORDER_EVENT_NAMES,
        SHIPMENT_EVENT_NAMES,
    )
    from tcwebhook.samples import common, orders, shipments

    samples: list[Sample] = []

    def add(name: str, kind: Kind, event_name: str | None, payload: dict[str, Any]) -> None:
        key = PAYLOAD_KEY_OF_KIND[kind]
        if key is None:
            samples.append(Sample(name, kind, None, payload))
            return
        created = payload.get("lastUpdatedAt") or payload["meta"]["lastUpdatedAt"]
        assert event_name is not None
        meta = common.message_meta(name, event_name, created)
        samples.append(
            Sample(name, kind, event_name, {"eventName": event_name, key: payload, "meta": meta})
        )

    order_payloads = {
        event: orders.order_event(event, index) for index, event in enumerate(ORDER_EVENT_NAMES)
    }
    for event, payload in order_payloads.items():
        add(sample_name(event, ORDER_EVENT_NAMES), "order", event, payload)
    for event, payload in order_payloads.items():
        name = sample_name(event, ORDER_EVENT_NAMES, "single-delivery-")
        add(name, "single_delivery_order", event, orders.single_delivery(payload))
    for index, event in enumerate(ORDER_DOCUMENTS_EVENT_NAMES):
        payload = orders.order_documents_event(event, 10 + index)
        add(sample_name(event, ORDER_DOCUMENTS_EVENT_NAMES), "order_documents", event, payload)
    for index, event in enumerate(SHIPMENT_EVENT_NAMES):
        payload = shipments.shipment_event(event, index)
        add(sample_name(event, SHIPMENT_EVENT_NAMES), "shipment", event, payload)
    add("order", "order_object", None, orders.full_order())
    add("shipment", "shipment_object", None, shipments.full_shipment())
    return tuple(samples)


def names() -> list[str]:
    return [sample.name for sample in catalog()]


def get_sample(name: str) -> Sample:
    """The sample called ``name`` (also found by its exact event name), or UnknownSample."""
    wanted = name.strip()
    by_name = {sample.name: sample for sample in catalog()}
    if wanted.lower() in by_name:
        return by_name[wanted.lower()]
    for sample in catalog():
        if sample.event_name == wanted:
            return sample  # the first is the delivery-schedule variant
    close = difflib.get_close_matches(wanted.lower(), list(by_name), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else "no sample has a similar name;"
    raise UnknownSample(f"no sample named '{name}': {hint} run 'tcwebhook samples list' to see all")


def write_samples(
    directory: Path, wanted: list[str] | None = None, *, overwrite: bool = False
) -> list[Path]:
    """Write samples as pretty ``NAME.json`` files; refuse to replace files unless asked."""

    chosen = [get_sample(name) for name in wanted] if wanted else list(catalog())
    paths = [directory / f"{sample.name}.json" for sample in chosen]
    existing = [path for path in paths if path.exists()]
    if existing and not overwrite:
        raise ReplaySourceError(
            f"{existing[0]} already exists ({len(existing)} of the files do); "
            "pass --overwrite to replace them or pick another directory"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for sample, path in zip(chosen, paths, strict=True):
            text = orjson.dumps(sample.body, option=orjson.OPT_INDENT_2).decode() + "\n"
            path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ReplaySourceError(
            f"cannot write samples to {directory}: {exc.strerror or exc}"
        ) from None
    return paths
