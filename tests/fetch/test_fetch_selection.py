"""Which lines ``fetch`` shows, on the shared samples and on edge cases.

The rule: docs/tradecloud.md#changed-lines.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tcwebhook.changes import filter_lines, parse_instant, select_lines
from tcwebhook.tradecloud import Tokens

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "tradecloud"
EXPECTED = json.loads((SAMPLES / "EXPECTED.json").read_text(encoding="utf-8"))["files"]


def sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


def keys(selection: list[Any], status: str | None = None) -> list[str]:
    return [s.key for s in selection if status is None or s.status == status]


def test_order_default_selects_the_lines_of_the_latest_update() -> None:
    order = sample("order.json")
    selection = select_lines("order", order)
    assert keys(selection) == EXPECTED["order.json"]["changedLines"] == ["0003"]
    assert {s.status for s in selection} == {"changed"}


def test_shipment_default_selects_changed_lines_inside_load_carriers() -> None:
    shipment = sample("shipment.json")
    selection = select_lines("shipment", shipment)
    expected = EXPECTED["shipment.json"]["changedLines"]
    assert keys(selection) == [line["key"] for line in expected]
    assert selection[0].carrier == "MSKU1234565"


def test_since_selects_lines_updated_after_the_instant() -> None:
    order = sample("order.json")
    # Lines 0001/0002 were updated at 09:14:27.512Z; that instant written otherwise is not after.
    assert keys(select_lines("order", order, parse_instant("2025-06-03T10:14:27.512+01:00"))) == [
        "0003"
    ]
    assert keys(select_lines("order", order, parse_instant("2025-06-03T09:14:27.5Z"))) == [
        "0001",
        "0002",
        "0003",
    ]
    assert select_lines("order", order, parse_instant("2030-01-01T00:00:00Z")) == []


def test_all_lists_every_line_with_its_status() -> None:
    shipment = sample("shipment.json")
    selection = select_lines("shipment", shipment, all_lines=True)
    assert [(s.key, s.status, s.carrier) for s in selection] == [
        ("DA-2025-07-0091/1", "changed", "MSKU1234565"),
        ("DA-2025-07-0091/2", "unchanged", None),
    ]


def test_lines_without_timestamp_are_listed_as_unknown() -> None:
    order = sample("order.json")
    del order["lines"][0]["lastUpdatedAt"]
    selection = select_lines("order", order)
    assert [(s.key, s.status) for s in selection] == [("0001", "unknown"), ("0003", "changed")]


def test_legacy_last_changed_at_is_honoured() -> None:
    shipment = sample("shipment.json")
    for line in shipment["loadCarriers"][0]["lines"]:
        line["meta"]["lastChangedAt"] = line["meta"].pop("lastUpdatedAt")
    shipment["meta"]["lastChangedAt"] = shipment["meta"].pop("lastUpdatedAt")
    assert keys(select_lines("shipment", shipment)) == ["DA-2025-07-0091/1"]


def test_order_without_header_timestamp_uses_the_newest_line() -> None:
    order = sample("order.json")
    del order["lastUpdatedAt"]
    assert keys(select_lines("order", order)) == ["0003"]


def test_filter_keeps_the_api_structure_with_only_selected_lines() -> None:
    shipment = sample("shipment.json")
    original = copy.deepcopy(shipment)
    filtered = filter_lines("shipment", shipment, select_lines("shipment", shipment))
    assert filtered["lines"] == []
    assert len(filtered["loadCarriers"][0]["lines"]) == 1
    assert filtered["loadCarriers"][0]["containerNumber"] == "MSKU1234565"
    assert set(filtered) == set(shipment)
    assert shipment == original  # the fetched object itself is untouched


@pytest.mark.parametrize(
    "data",
    [None, [], {"access": "a"}, {"access": "a", "refresh": "r", "accessExpires": "soon"}],
)
def test_corrupt_cache_entries_are_ignored(data: Any) -> None:
    assert Tokens.from_json(data) is None
