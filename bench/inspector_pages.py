"""Time the inspector's event-list queries on a store with many events.

    python bench/inspector_pages.py [--events 1000000] [--db /tmp/inspector-bench.db]

Fills the store once (rows written directly, many per transaction), then times one page of
50 events under each filter, first page and a page deep in the history.
"""

from __future__ import annotations

import argparse
import sqlite3
import time
from pathlib import Path

from tcwebhook.store import EventQuery, SqliteStore

NAMES = ("OrderIssuedByBuyer", "OrderLinesAcceptedBySupplier", "ShipmentSentBySupplier")


def fill(path: Path, count: int) -> None:
    SqliteStore(path).close()  # create and migrate
    connection = sqlite3.connect(path)
    have = connection.execute("SELECT count(*) FROM events").fetchone()[0]
    batch = 20_000
    for start in range(have, count, batch):
        rows = []
        tasks = []
        for n in range(start, min(start + batch, count)):
            name = NAMES[n % 3]
            kind = "shipment" if name.startswith("Shipment") else "order"
            rows.append(
                (n + 1, "2026-11-30T12:00:00.000Z", kind, name, f"m-{n}", f"d-{n}",
                 f"r-{n // 10}", f"PO{n // 10:08d}", "[]", "POST", "/x", "{}", b"{}")
            )  # fmt: skip
            state = "dead" if n % 100_000 == 7 else "done"
            tasks.append((n + 1, "erp", state, 0.0, "2026-11-30T12:00:00.000Z"))
        connection.executemany(
            "INSERT INTO events (id, received_at, kind, event_name, message_id, dedup_key, "
            "resource_id, number, changed_lines, method, path, headers, body) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        connection.executemany(
            "INSERT INTO tasks (event_id, target, state, next_attempt_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?)",
            tasks,
        )
        connection.commit()
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=Path("/tmp/inspector-bench.db"))
    args = parser.parse_args()
    fill(args.db, args.events)
    store = SqliteStore(args.db)
    deep = args.events // 2
    cases = {
        "newest": EventQuery(),
        "deep page": EventQuery(before=deep),
        "kind": EventQuery(kind="shipment", before=deep),
        "event name": EventQuery(event_name="OrderIssuedByBuyer", before=deep),
        "event glob": EventQuery(event_name="Order*", before=deep),
        "state dead (rare)": EventQuery(task_state="dead"),
        "state done": EventQuery(task_state="done", before=deep),
        "search PO": EventQuery(search=f"PO{deep // 10:08d}"),
        "search PO prefix": EventQuery(search="PO0000"),
        "search id": EventQuery(search=f"#{deep}"),
        "newer page": EventQuery(after=deep),
    }
    for label, query in cases.items():
        started = time.perf_counter()
        events = store.page_events(query)
        took = (time.perf_counter() - started) * 1000
        print(f"{label:20} {len(events):3} events  {took:7.1f} ms")
    store.close()


if __name__ == "__main__":
    main()
