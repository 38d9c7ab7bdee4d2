"""The outbox at a glance, for ``tcwebhook status`` and monitoring."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from tcwebhook.changes import parse_instant
from tcwebhook.delivery import FETCH_TARGET
from tcwebhook.errors import NotFound, StoreUnavailable
from tcwebhook.store import Store, StoredEvent

_UNFINISHED = ("pending", "failed", "running")

ERROR_LIMIT = 300  # characters of a last error quoted in a problem
# Defaults of 'tcwebhook status' (seconds), also used by the inspector's status page.
MAX_PENDING_AGE = 3600.0
MAX_FAILING_AGE = 300.0


@dataclasses.dataclass(frozen=True)
class Blocker:
    """The oldest undelivered event of a sink, held by a failure: on a ``concurrency: 1`` sink
    every later event waits behind it."""

    target: str
    event_id: int
    kind: str
    resource_id: str | None
    number: str | None
    received_at: str
    waiting_for: str | None  # "@fetch": the sink waits for the API fetch of this GET notification
    attempts: int  # of whatever fails: the fetch it waits for, else its own delivery
    last_error: str | None
    behind: int  # other undelivered deliveries of the sink

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        """One line naming the event and why it is not delivered."""
        what = f"event #{self.event_id} ({self.kind}, Tradecloud id {self.resource_id or '-'})"
        error = (self.last_error or "no error recorded")[:ERROR_LIMIT]
        if self.waiting_for:
            why = f"it waits for its {self.waiting_for}, which failed {self.attempts} time(s)"
        else:
            why = f"its delivery failed {self.attempts} time(s)"
        return (
            f"{self.target} is held back by {what}: {why}; last error: {error}; "
            f"{self.behind} later delivery(ies) wait behind it"
        )


def find_blockers(
    store: Store,
    heads: dict[str, dict[str, Any]],
    counts: dict[str, dict[str, int]],
    ordered: Collection[str] | None = None,
) -> dict[str, Blocker]:
    """Per sink, its oldest undelivered event when a failure holds it (its own, or its
    ``@fetch``'s); ``ordered``: the ``concurrency: 1`` sinks (None: every sink counts).

    One event read per sink, and only for a sink whose head is not simply queued.
    """
    found = {}
    for target, head in sorted(heads.items()):
        if target == FETCH_TARGET or (ordered is not None and target not in ordered):
            continue
        try:
            event = store.get_event(head["event_id"])
        except NotFound:  # purged meanwhile
            continue
        blocker = _blocker(target, event, counts.get(target, {}))
        if blocker is not None:
            found[target] = blocker
    return found


def _blocker(target: str, event: StoredEvent, counts: dict[str, int]) -> Blocker | None:
    own = next((t for t in event.tasks if t.target == target), None)
    fetch = next(
        (t for t in event.tasks if t.target == FETCH_TARGET and t.state in _UNFINISHED), None
    )
    if own is None or own.state not in _UNFINISHED:
        return None
    failing = fetch if fetch is not None else own
    if failing.attempts < 1:
        return None  # queued, not held
    return Blocker(
        target=target,
        event_id=event.id,
        kind=event.kind,
        resource_id=event.resource_id,
        number=event.number,
        received_at=event.received_at,
        waiting_for=FETCH_TARGET if fetch is not None else None,
        attempts=failing.attempts,
        last_error=failing.last_error,
        behind=max(sum(counts.get(state, 0) for state in _UNFINISHED) - 1, 0),
    )


def held_back_by(
    store: Store, event: StoredEvent, ordered: Collection[str] | None = None
) -> dict[str, Blocker]:
    """For each undelivered delivery of ``event``, the earlier event holding its sink back."""
    waiting = {t.target for t in event.tasks if t.state in _UNFINISHED} - {FETCH_TARGET}
    if not waiting:
        return {}
    raw = store.status()
    heads = {t: h for t, h in raw["oldest_unfinished"].items() if t in waiting}
    blockers = find_blockers(store, heads, raw["tasks"], ordered)
    return {t: b for t, b in blockers.items() if b.event_id != event.id}


def outbox_status(
    store: Store,
    max_pending_age: float,
    max_failing_age: float,
    ordered: Collection[str] | None = None,
) -> dict[str, Any]:
    """Counts, the oldest unfinished delivery's age, and whether anything needs a person:
    dead deliveries, a delivery that has kept failing, a store that cannot take events; and
    which event holds back each blocked sink (``ordered``: the ``concurrency: 1`` sinks, None
    when unknown: then every sink whose oldest delivery is held by a failure is named)."""
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
    blockers: dict[str, Blocker] = {}
    # A store that cannot be read is reported above; the counts still stand without this.
    with contextlib.suppress(StoreUnavailable):
        blockers = find_blockers(store, raw["oldest_unfinished"], raw["tasks"], ordered)
    failing = _failing(raw["oldest_unfinished"], raw["tasks"], now, max_failing_age, blockers)
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
        "blocked": [blocker.as_dict() for _, blocker in sorted(blockers.items())],
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
    blockers: dict[str, Blocker],
) -> dict[str, str]:
    """Targets whose oldest unfinished delivery has been attempted (or waits for a fetch that
    was) and is still not done after ``max_failing_age``: on a ``concurrency: 1`` sink it
    holds back every later event."""
    found = {}
    for target, head in sorted(heads.items()):
        age = _age(head["received_at"], now)
        if age is None or age <= max_failing_age:
            continue
        if target in blockers:
            found[target] = f"{blockers[target].describe()} (for {age:.0f} s)"
            continue
        if head["attempts"] < 1:
            continue
        waiting = sum(counts.get(target, {}).get(s, 0) for s in ("pending", "failed", "running"))
        error = (head["last_error"] or "no error recorded")[:ERROR_LIMIT]
        found[target] = (
            f"{target}: event #{head['event_id']} still not delivered after "
            f"{head['attempts']} attempt(s) and {age:.0f} s ({waiting} undelivered in all); "
            f"last error: {error}"
        )
    return found
