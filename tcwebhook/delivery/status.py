"""The outbox at a glance, for ``tcwebhook status`` and monitoring."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tcwebhook.changes import parse_instant
from tcwebhook.errors import StoreUnavailable
from tcwebhook.store import Store

ERROR_LIMIT = 300  # characters of a last error quoted in a problem
# Defaults of 'tcwebhook status' (seconds), also used by the inspector's status page.
MAX_PENDING_AGE = 3600.0
MAX_FAILING_AGE = 300.0


def outbox_status(store: Store, max_pending_age: float, max_failing_age: float) -> dict[str, Any]:
    """Counts, the oldest unfinished delivery's age, and whether anything needs a person:
    dead deliveries, a delivery that has kept failing, a store that cannot take events."""
    problems = []
    store_problem = store.probe_write()
    if store_problem:
        problems.append(f"the event store cannot take events: {store_problem}")
    reconciled = None
    try:
        raw = store.status()
        reconciled = store.last_reconcile_run()
    except StoreUnavailable as exc:
        problems.append(f"the event store cannot be read: {exc}")
        raw = {"events": {}, "tasks": {}, "oldest_unfinished_received_at": None}
        raw["oldest_unfinished"] = {}
    now = datetime.now(UTC)
    age = _age(raw["oldest_unfinished_received_at"], now)
    dead = sum(states.get("dead", 0) for states in raw["tasks"].values())
    if dead:
        problems.append(
            f"{dead} delivery(ies) dead: fix the sink, then 'tcwebhook events retry --dead'"
        )
    failing = _failing(raw["oldest_unfinished"], raw["tasks"], now, max_failing_age)
    problems.extend(failing.values())
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
        "failing": sorted(failing),
        "reconcile": reconciled,
        "store_writable": store_problem is None,
        "problems": problems,
        "healthy": not problems,
    }


def _age(instant: str | None, now: datetime) -> float | None:
    moment = parse_instant(instant) if instant else None
    return (now - moment).total_seconds() if moment else None


def _failing(
    heads: dict[str, dict[str, Any]],
    counts: dict[str, dict[str, int]],
    now: datetime,
    max_failing_age: float,
) -> dict[str, str]:
    """Targets whose oldest unfinished delivery has been attempted and is still not done after
    ``max_failing_age``: on a ``concurrency: 1`` sink it holds back every later event."""
    found = {}
    for target, head in sorted(heads.items()):
        age = _age(head["received_at"], now)
        if head["attempts"] < 1 or age is None or age <= max_failing_age:
            continue
        waiting = sum(counts.get(target, {}).get(s, 0) for s in ("pending", "failed", "running"))
        error = (head["last_error"] or "no error recorded")[:ERROR_LIMIT]
        found[target] = (
            f"{target}: event #{head['event_id']} still not delivered after "
            f"{head['attempts']} attempt(s) and {age:.0f} s ({waiting} undelivered in all); "
            f"last error: {error}"
        )
    return found
