"""Rendering of a check-tls report for people: checks table, chain as received, verdict line."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tcwebhook.console import printable, safe_text
from tcwebhook.tlscheck.report import Report, ReportStatus, Status

STATUS_STYLES = {
    Status.PASS: "bold green",
    Status.WARN: "bold yellow",
    Status.FAIL: "bold red",
    Status.INFO: "cyan",
}


def render(report: Report, console: Console, strict: bool = False) -> None:
    console.print(checks_table(report))
    if report.chain:
        console.print(chain_table(report))
    console.print(verdict_line(report, strict))
    for note in report.notes:
        console.print(safe_text(f"note: {note}", None))


def checks_table(report: Report) -> Table:
    table = Table(
        title=safe_text(f"check-tls {report.target}", None), title_justify="left", expand=False
    )
    table.add_column("Check", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Finding", ratio=3)
    table.add_column("Fix", ratio=2)
    for check in report.checks:
        # Findings quote what the server sent (certificate names, a Location header): plain
        # text with control characters escaped, so a name like "[/]" or "\x1b[2J" stays text.
        table.add_row(
            check.title,
            Text(check.status.upper(), style=STATUS_STYLES[check.status]),
            safe_text(check.finding, None),
            safe_text(check.fix, None),
        )
    return table


def chain_table(report: Report) -> Table:
    table = Table(title="Certificate chain as received", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("Subject", overflow="fold")
    table.add_column("Issuer", overflow="fold")
    table.add_column("Valid", no_wrap=True)
    table.add_column("Key", no_wrap=True)
    table.add_column("Signature", no_wrap=True)
    for index, certificate in enumerate(report.chain):
        table.add_row(
            str(index),
            safe_text(certificate.subject) + (" (self-signed)" if certificate.self_signed else ""),
            safe_text(certificate.issuer),
            f"{certificate.not_before:%Y-%m-%d} → {certificate.not_after:%Y-%m-%d}",
            safe_text(certificate.key),
            safe_text(certificate.signature),
        )
    return table


def verdict_line(report: Report, strict: bool = False) -> Text:
    failed = sum(check.status is Status.FAIL for check in report.checks)
    warned = sum(check.status is Status.WARN for check in report.checks)
    took = f"({report.elapsed_seconds:.2f} s)"
    target = printable(report.target, None)  # file names may hold anything
    where = f"a server using {target}" if report.from_files else target
    if report.verdict is ReportStatus.FAIL:
        return Text.assemble(
            ("FAIL", "bold red"),
            f": {failed} check{'s' if failed != 1 else ''} failed; Tradecloud will not be able "
            f"to deliver to {where} until {'it is' if failed == 1 else 'they are'} fixed {took}",
        )
    if report.verdict is ReportStatus.WARN:
        tail = " (failing because of --strict)" if strict else ""
        return Text.assemble(
            ("WARN", "bold yellow"),
            f": {target} meets Tradecloud's TLS requirements with {warned} "
            f"warning{'s' if warned != 1 else ''}{tail} {took}",
        )
    return Text.assemble(
        ("PASS", "bold green"), f": {target} meets Tradecloud's TLS requirements {took}"
    )
