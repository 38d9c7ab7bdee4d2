"""What ``tcwebhook requests`` prints: a line per request (a refused one with its fix), or JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tcwebhook.requestlog import RequestRecord

CELL_LIMIT = 80  # characters of a path or reason in the table
FIX_LIMIT = 400


def render(records: list[RequestRecord], json: bool, *, tls_visible: bool) -> None:
    """Newest first; every value escaped (a path or body excerpt is the client's text)."""
    from rich.table import Table

    from tcwebhook import console
    from tcwebhook.requestlog import NOT_VISIBLE_BEHIND_PROXY

    if json:
        console.print_json([record.to_json() for record in records])
        return
    if not tls_visible:
        console.info(NOT_VISIBLE_BEHIND_PROXY)
    if not records:
        console.info("No requests recorded yet.")
        return
    safe = console.safe_text
    table = Table(box=None, header_style="bold")
    for column in ("time (UTC)", "status", "request", "reason / fix", "Tradecloud", "client"):
        table.add_column(column)
    for record in records:
        status = "TLS" if record.kind == "tls" else str(record.status or "-")
        request = f"{record.method} {record.path}" if record.method else "-"
        reason = record.reason
        if record.event_id is not None:
            reason = f"stored as event {record.event_id}"
        if record.count > 1:
            reason += f" ({record.count} times since {(record.first_seen or '')[:19]})"
        cell = safe(reason, CELL_LIMIT)
        if record.fix:
            cell.append("\n→ ")
            cell.append_text(safe(record.fix, FIX_LIMIT))
        table.add_row(
            safe(record.time.replace("T", " ").rstrip("Z")),
            safe(status),
            safe(request, CELL_LIMIT),
            cell,
            safe(record.tradecloud),
            safe(record.client or "-"),
        )
    console.stdout().print(table)
