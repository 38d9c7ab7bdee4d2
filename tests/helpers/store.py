"""Events to store, and the store URL of the backend a test runs on."""

from __future__ import annotations

from pathlib import Path

from tcwebhook.store import NewEvent, utc_now


def new_event(n: int, dedup: str | None = None, tasks: tuple[str, ...] = ()) -> NewEvent:
    return NewEvent(
        received_at=utc_now(),
        kind="order",
        event_name="OrderIssuedByBuyer",
        message_id=f"m-{n}",
        dedup_key=dedup if dedup is not None else f"m:m-{n}",
        resource_id=f"order-{n}",
        number=f"PO{n}",
        changed_lines=("0001",),
        method="POST",
        path="/tradecloud/order",
        headers={"Content-Type": "application/json"},
        body=b'{"eventName": "OrderIssuedByBuyer"}',
        tasks=tasks,
    )


def backend_url(tmp_path: Path) -> str:
    """The store URL the current backend uses: $TCWEBHOOK_STORE_URL, else SQLite in tmp_path."""
    import os

    return os.environ.get("TCWEBHOOK_STORE_URL") or f"sqlite:///{tmp_path}/data/events.db"
