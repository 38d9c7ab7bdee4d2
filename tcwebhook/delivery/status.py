"""The outbox at a glance, for ``tcwebhook status`` and monitoring."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tcwebhook.changes import parse_instant
from tcwebhook.config import Settings
from tcwebhook.store import open_store


def outbox_status(settings: Settings, max_pending_age: float) -> dict[str, Any]:
    """Counts, the oldest unfinished delivery's age, and whether anything needs a person."""
    store = open_store(settings.store_url)
    try:
        raw = store.status()
        reconciled = store.last_reconcile_run()
    finally:
        store.close()
    oldest = parse_instant(raw["oldest_unfinished_received_at"])
    age = (datetime.now(UTC) - oldest).total_seconds() if oldest else None
    dead = sum(states.get("dead", 0) for states in raw["tasks"].values())
    problems = []
    if dead:
        problems.append(
            f"{dead} delivery(ies) dead: fix the sink, then 'tcwebhook events retry --dead'"
        )
    if age is not None and age > max_pending_age:
        problems.append(
            f"the oldest unfinished delivery has waited {age:.0f} s (> {max_pending_age:g} s)"
        )
    if reconciled is not None and not reconciled.get("ok", True):
        problems.append(
            f"the last reconcile run ({reconciled.get('finished_at')}) failed: "
            f"{reconciled.get('error')}"
        )
    return {
        "events": raw["events"],
        "deliveries": raw["tasks"],
        "dead": dead,
        "oldest_unfinished_age_seconds": age,
        "reconcile": reconciled,
        "problems": problems,
        "healthy": not problems,
    }
