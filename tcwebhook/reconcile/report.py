"""What a reconcile run found: per endpoint and in all. Data only; the CLI renders it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tcwebhook.errors import EXIT_CHECK_FAILED

ProgressCallback = Callable[[str, int, int], None]  # endpoint, objects read, total


@dataclass(frozen=True)
class RecoveredChange:
    """A change no webhook delivered: stored (``event_id``) or, with --dry-run, only listed."""

    kind: str
    resource_id: str
    number: str | None
    last_updated_at: str
    changed_lines: tuple[str, ...]
    message_id: str
    event_id: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "resource_id": self.resource_id,
            "number": self.number,
            "last_updated_at": self.last_updated_at,
            "changed_lines": list(self.changed_lines),
            "message_id": self.message_id,
            "event_id": self.event_id,
        }


@dataclass
class EndpointResult:
    """What one poll endpoint gave and what became of it."""

    endpoint: str
    kind: str
    since: str  # the lastUpdatedAfter sent
    cursor_before: str | None
    until: str | None = None
    polled: int = 0
    known: int = 0
    after_until: int = 0  # polled, but updated after --until: left for a later run
    unusable: int = 0  # without an id or a readable lastUpdatedAt
    pages: int = 0
    total: int | None = None
    recovered: list[RecoveredChange] = field(default_factory=list)
    cursor_after: str | None = None
    complete: bool = False

    def to_json(self, include_events: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "endpoint": self.endpoint,
            "kind": self.kind,
            "since": self.since,
            "until": self.until,
            "total": self.total,
            "pages": self.pages,
            "polled": self.polled,
            "known": self.known,
            "recovered": len(self.recovered),
            "after_until": self.after_until,
            "unusable": self.unusable,
            "cursor_before": self.cursor_before,
            "cursor_after": self.cursor_after,
            "complete": self.complete,
        }
        if include_events:
            data["events"] = [change.to_json() for change in self.recovered]
        return data


@dataclass
class ReconcileReport:
    """One run: per endpoint what was polled, known and recovered; ``error`` if it stopped."""

    started_at: str
    dry_run: bool
    trigger: str  # "cli" or "serve"
    endpoints: list[EndpointResult] = field(default_factory=list)
    finished_at: str | None = None
    error: str | None = None
    error_exit_code: int = EXIT_CHECK_FAILED

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def polled(self) -> int:
        return sum(result.polled for result in self.endpoints)

    @property
    def known(self) -> int:
        return sum(result.known for result in self.endpoints)

    @property
    def unusable(self) -> int:
        return sum(result.unusable for result in self.endpoints)

    @property
    def recovered(self) -> list[RecoveredChange]:
        return [change for result in self.endpoints for change in result.recovered]

    def recovered_by_kind(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for change in self.recovered:
            counts[change.kind] = counts.get(change.kind, 0) + 1
        return counts

    def to_json(self, include_events: bool = True) -> dict[str, Any]:
        """The shape of ``reconcile --json`` (and, without events, of ``status``)."""
        return {
            "ok": self.ok,
            "error": self.error,
            "dry_run": self.dry_run,
            "trigger": self.trigger,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "polled": self.polled,
            "known": self.known,
            "recovered": len(self.recovered),
            "recovered_by_kind": self.recovered_by_kind(),
            "unusable": self.unusable,
            "endpoints": [result.to_json(include_events) for result in self.endpoints],
        }
