"""What ``tcwebhook init`` prints: the file written, the portal's entries, the secret once,
and what is left to do."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table
from rich.text import Text

from tcwebhook import console
from tcwebhook.cli import check_tls_output
from tcwebhook.init import Answers, portal_entries, secret, secret_key, secret_label
from tcwebhook.init_check import SetupCheck


def render(answers: Answers, config: Path, outcome: SetupCheck | None) -> None:
    out = console.stdout()
    out.print(Text.assemble(("Wrote ", "bold green"), str(config), " (mode 0600)"))
    out.print(portal_table(answers))
    # Shown once, here; afterwards it is only in the configuration file.
    out.print(
        Text.assemble(
            (f"{secret_label(answers)} (shown once; it is in {config.name}): ", "bold"),
            secret(answers),
        )
    )
    if outcome is None:
        return
    for report in (outcome.files, outcome.url):
        if report is not None:
            check_tls_output.render(report, out)
    if outcome.unreachable:
        out.print(Text(f"The public URL could not be checked yet: {outcome.unreachable}"))
    out.print(Text("Left to do:", style="bold"))
    for number, step in enumerate(outcome.left_to_do, 1):
        out.print(Text(f"  {number}. {step}"))


def portal_table(answers: Answers) -> Table:
    """One block per webhook, one value per row: easy to copy field by field."""
    table = Table(
        title="Enter in the Tradecloud portal (My Company → Settings → Webhook Integration)",
        title_justify="left",
        show_header=False,
        box=None,
        padding=(0, 2, 0, 0),
    )
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for entry in portal_entries(answers):
        table.add_row(Text(entry.integration, style="bold underline"), "")
        table.add_row("  Method", entry.method)
        table.add_row("  URL", entry.url)
        table.add_row("  Authentication", entry.authentication)
        if entry.format:
            table.add_row("  Format", entry.format)
        if entry.delivery_mode:
            table.add_row("  My system supports", entry.delivery_mode)
    return table


def print_json(answers: Answers, config: Path, outcome: SetupCheck | None) -> None:
    """No secret in JSON: scripts read it from the configuration file."""
    data: dict[str, object] = {
        "config": str(config.resolve()),
        "auth": answers.auth.value,
        "secret_in": f"{config.resolve()}: {secret_key(answers)}",
        "portal": [entry.to_json() for entry in portal_entries(answers)],
    }
    if outcome is not None:
        data["checks"] = {
            "files": outcome.files.to_dict() if outcome.files else None,
            "url": outcome.url.to_dict() if outcome.url else None,
            "unreachable": outcome.unreachable,
            "left_to_do": outcome.left_to_do,
        }
    console.print_json(data)
