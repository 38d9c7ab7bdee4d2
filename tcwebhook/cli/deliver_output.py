"""What ``tcwebhook deliver`` and ``tcwebhook status`` print."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tcwebhook.delivery.sinks import TaskPolicy
    from tcwebhook.store import TaskRecord


def print_delivery(policy: TaskPolicy, task: TaskRecord, state: str, error: str | None) -> None:
    """One line per delivery attempt (never a secret: errors are written without them)."""
    line = f"{datetime.now(UTC):%H:%M:%S}  event #{task.event_id} → {policy.name}: {state}"
    if error:
        line += f" ({error})"
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


_STATES = ("pending", "running", "failed", "dead", "done")


def render_status(report: dict[str, Any]) -> None:
    from rich.table import Table

    from tcwebhook import console

    out = console.stdout()
    events = report["events"]
    out.print(f"[bold]{sum(events.values())}[/] events stored")
    for kind, count in sorted(events.items()):
        out.print(f"  {kind}: {count}")
    if report["deliveries"]:
        table = Table(box=None, header_style="bold")
        table.add_column("target")
        for state in _STATES:
            table.add_column(state, justify="right")
        for target, states in sorted(report["deliveries"].items()):
            table.add_row(target, *(str(states.get(state, 0)) for state in _STATES))
        out.print(table)
    age = report["oldest_unfinished_age_seconds"]
    if age is not None:
        out.print(f"oldest unfinished delivery waits for {age:.0f} s")
    for blocked in report.get("blocked", ()):
        if blocked["target"] not in report["failing"]:  # else said below, as a problem
            out.print(console.safe_text(describe_blocker(blocked), None))
    for problem in report["problems"]:
        console.warning(console.safe_text(problem, None).plain)
    out.print("[green]healthy[/]" if report["healthy"] else "[red]unhealthy[/]")


def describe_blocker(blocked: dict[str, Any]) -> str:
    """The line of ``status`` and ``events show`` for a sink held back by an earlier event."""
    from tcwebhook.delivery.status import Blocker

    return Blocker(**blocked).describe()
