"""Request bodies for the benchmark, shaped like the Tradecloud order event in the test fixtures.

Each body is written as two files, the bytes before and after the value of ``meta.messageId``,
so the load generator can splice a unique id into every request without re-encoding JSON.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

FIXTURE = Path(__file__).resolve().parent.parent / "tests/fixtures/tradecloud/order-event.json"
MARKER = "@@MESSAGE-ID@@"


def one_line_event(template: dict[str, Any]) -> dict[str, Any]:
    """An order event with one line, as Tradecloud sends most of them (about 5 KB)."""
    event = copy.deepcopy(template)
    event["orderEvent"]["lines"] = event["orderEvent"]["lines"][:1]
    return event


def large_event(template: dict[str, Any], lines: int = 20) -> dict[str, Any]:
    """A large order: ``lines`` order lines (about 50 KB)."""
    event = copy.deepcopy(template)
    first = event["orderEvent"]["lines"][0]
    order_lines = []
    for index in range(1, lines + 1):
        line = copy.deepcopy(first)
        position = f"{index:04d}"
        line["id"] = line["id"].rsplit("-", 1)[0] + "-" + position
        line["buyerLine"]["position"] = position
        line["buyerLine"]["item"]["number"] = f"P-{10000 + index}"
        # Keep the large body near 50 KB: these two mirror other fields when nothing is requested.
        line.pop("deliveryScheduleIncludingRequests", None)
        line.pop("pricesIncludingRequests", None)
        order_lines.append(line)
    event["orderEvent"]["lines"] = order_lines
    return event


def write_split(event: dict[str, Any], directory: Path, name: str, compact: bool) -> int:
    """Write ``name.head`` and ``name.tail`` around the message id; return the body size."""
    event["meta"]["messageId"] = MARKER
    separators = (",", ":") if compact else (", ", ": ")
    text = json.dumps(event, separators=separators, ensure_ascii=False)
    head, tail = text.encode().split(MARKER.encode())
    (directory / f"{name}.head").write_bytes(head)
    (directory / f"{name}.tail").write_bytes(tail)
    return len(head) + len(tail) + 36  # a UUID-sized id


def main(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    template = json.loads(FIXTURE.read_text(encoding="utf-8"))
    sizes = {
        "small": write_split(one_line_event(template), directory, "small", compact=False),
        "large": write_split(large_event(template), directory, "large", compact=True),
    }
    json.dump(sizes, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
