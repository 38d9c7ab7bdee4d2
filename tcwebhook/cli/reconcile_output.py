"""Rendering of a reconcile run: summary table, recovered changes, verdict; serve's log lines."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table
from rich.text import Text

from tcwebhook.reconcile import ProgressCallback, ReconcileReport

MAX_LISTED = 50  # recovered changes listed one by one; the rest are counted


def render(report: ReconcileReport, console: Console) -> None:
    console.print(summary_table(report))
    if report.recovered:
        console.print(recovered_table(report))
    console.print(verdict_line(report))


def summary_table(report: ReconcileReport) -> Table:
    title = "reconcile (dry run: nothing stored)" if report.dry_run else "reconcile"
    table = Table(title=title, title_justify="left")
    table.add_column("Endpoint", no_wrap=True)
    table.add_column("Since", no_wrap=True)
    table.add_column("Polled", justify="right")
    table.add_column("Known", justify="right")
    table.add_column("Would recover" if report.dry_run else "Recovered", justify="right")
    table.add_column("After --until", justify="right")
    table.add_column("Cursor now", no_wrap=True)
    for result in report.endpoints:
        cursor = result.cursor_after if result.complete else "(unchanged: not finished)"
        table.add_row(
            Text(result.endpoint),
            Text(result.since),
            str(result.polled),
            str(result.known),
            str(len(result.recovered)),
            str(result.after_until),
            Text(cursor or "-"),
        )
    return table


def recovered_table(report: ReconcileReport) -> Table:
    table = Table(title="Changes no webhook delivered", title_justify="left")
    table.add_column("Kind", no_wrap=True)
    table.add_column("Number", overflow="fold")
    table.add_column("Tradecloud id", overflow="fold")
    table.add_column("lastUpdatedAt", no_wrap=True)
    table.add_column("Changed lines", overflow="fold")
    table.add_column("Event", justify="right")
    recovered = report.recovered
    for change in recovered[:MAX_LISTED]:
        # Text(): payload values are shown as they are, never read as Rich markup.
        table.add_row(
            change.kind,
            Text(change.number or "-"),
            Text(change.resource_id),
            change.last_updated_at,
            Text(", ".join(change.changed_lines) or "(header only)"),
            f"#{change.event_id}" if change.event_id is not None else "-",
        )
    if len(recovered) > MAX_LISTED:
        table.caption = f"… and {len(recovered) - MAX_LISTED} more (--json lists them all)"
    return table


def verdict_line(report: ReconcileReport) -> Text:
    count = len(report.recovered)
    by_kind = ", ".join(f"{kind} {n}" for kind, n in sorted(report.recovered_by_kind().items()))
    detail = f" ({by_kind})" if by_kind else ""
    if report.error is not None and report.unusable and all(r.complete for r in report.endpoints):
        verb = "would be recovered (dry run)" if report.dry_run else "recovered"
        return Text.assemble(
            ("UNREADABLE", "bold red"),
            f": {report.unusable} object(s) from Tradecloud could not be read and were "
            f"skipped; {count} of {report.polled} polled change(s) {verb}{detail}",
        )
    if report.error is not None:
        stored = "listed" if report.dry_run else "stored"
        return Text.assemble(
            ("INCOMPLETE", "bold red"),
            f": {count} change(s) {stored} before the run stopped{detail}; run it again later",
        )
    if count == 0:
        return Text.assemble(
            ("OK", "bold green"), f": {report.polled} polled, nothing missing from the store"
        )
    verb = "would be recovered (dry run)" if report.dry_run else "recovered"
    return Text.assemble(
        ("MISSING", "bold yellow"),
        f": {count} of {report.polled} polled change(s) {verb}{detail}",
    )


@contextmanager
def progress_bar(console: Console, enabled: bool) -> Iterator[ProgressCallback | None]:
    """A bar per endpoint on ``console`` (stderr) while polling; nothing when not enabled."""
    if not enabled:
        yield None
        return
    bars: dict[str, TaskID] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
    ) as progress:

        def update(endpoint: str, done: int, total: int) -> None:
            if endpoint not in bars:
                bars[endpoint] = progress.add_task(endpoint, total=total)
            progress.update(bars[endpoint], completed=done, total=total)

        yield update


# ------------------------------------------------------------------------------------------
# serve's log lines


def log_line(report: ReconcileReport) -> None:
    """serve: one line per run, then one per recovered change (ids escaped)."""
    clock = (report.finished_at or report.started_at)[11:23]
    if report.error is not None:
        line = f"{clock}  reconcile failed: {_plain(report.error)}"
    else:
        line = f"{clock}  reconcile: {_plain(verdict_line(report).plain)}"
    lines = [line]
    for change in report.recovered[:MAX_LISTED]:
        what = _plain(change.number or change.resource_id)
        lines.append(
            f"{clock}  recovered {change.kind} {what} at {change.last_updated_at}  "
            f"{len(change.changed_lines)} line(s) changed  #{change.event_id}"
        )
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


def json_log_line(report: ReconcileReport) -> None:
    from tcwebhook import console

    console.print_json_line({"reconcile": report.to_json()})


def _plain(text: str) -> str:
    """Control characters from a payload escaped, so a log line stays one harmless line."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)
