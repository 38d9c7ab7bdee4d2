"""What ``tcwebhook samples`` prints: the catalogue, one sample's JSON, the files written."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tcwebhook.samples import Sample


def render_catalog(catalog: Sequence[Sample], json_output: bool) -> None:
    """Name, kind and event name of every sample, as a table or JSON."""
    from rich.table import Table

    from tcwebhook import console

    if json_output:
        console.print_json(
            [{"name": s.name, "kind": s.kind, "eventName": s.event_name} for s in catalog]
        )
        return
    out = console.stdout()
    title = f"{len(catalog)} samples" if out.is_terminal else None
    table = Table(title=title, title_justify="left")
    table.add_column("name", style="bold", overflow="fold")
    table.add_column("kind", overflow="fold")
    table.add_column("eventName", overflow="fold")
    for sample in catalog:
        table.add_row(sample.name, sample.kind, sample.event_name or "-")
    if not out.is_terminal:
        from rich.console import Console

        # Piped output keeps whole names on one line, so that grep and cut work on it.
        out = Console(width=200, highlight=False)
    out.print(table)


def print_body(body: Any, raw: bool) -> None:
    """A sample's body as pretty JSON, or unformatted (``raw``)."""
    from tcwebhook import console

    sys.stdout.write(console.to_json(body, pretty=not raw) + "\n")


def print_xml(name: str, body: Any) -> None:
    """A sample as tXML (docs/tradecloud.md#txml); only order webhooks have that format."""
    from tcwebhook import txml
    from tcwebhook.errors import UsageError
    from tcwebhook.protocol import ORDER_PAYLOAD_KEYS

    if not any(key in body for key in ORDER_PAYLOAD_KEYS):
        raise UsageError(
            f"{name}: Tradecloud sends shipments as JSON only (tXML is a format of the order "
            "webhook); leave out --xml"
        )
    sys.stdout.write(txml.to_xml(body).decode() + "\n")


def render_written(directory: Path, written: Sequence[Path], json_output: bool) -> None:
    from tcwebhook import console

    if json_output:
        console.print_json({"directory": str(directory), "written": [str(p) for p in written]})
        return
    console.stdout().print(f"wrote {len(written)} samples to {directory}")
