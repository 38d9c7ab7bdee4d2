"""``tcwebhook fetch order|shipment|document`` and ``tcwebhook logout``."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from tcwebhook.cli.common import ConfigOption, DataDirOption, JsonOption, load, run

if TYPE_CHECKING:
    from datetime import datetime

    from rich.console import RenderableType

    from tcwebhook.changes import SelectedLine
    from tcwebhook.config import Settings
    from tcwebhook.fetch import FetchReport

BaseUrlOption = typer.Option(
    None,
    "--base-url",
    help="Tradecloud API base URL, e.g. https://api.accp.tradecloud1.com/v2 "
    "(default: from tradecloud.environment).",
    show_default=False,
)
CaFileOption = typer.Option(
    None,
    "--ca-file",
    help="Extra CA certificate (PEM) to trust, e.g. a TLS-inspecting proxy's.",
    show_default=False,
)
SinceOption = typer.Option(
    None,
    "--since",
    metavar="TIMESTAMP",
    help="List the lines updated after this instant (ISO 8601, e.g. 2025-06-04T12:00:00Z).",
    show_default=False,
)
InsecureOption = typer.Option(
    False,
    "--insecure",
    help="Allow a plain http:// base URL (a local test server): the integration user's "
    "password then travels unencrypted. Prints a warning.",
)
AllOption = typer.Option(False, "--all", help="List every line, changed or not.")
RawOption = typer.Option(False, "--raw", help="Print the API response untouched.")

fetch_app = typer.Typer(
    help="Read an order, shipment or document from the Tradecloud API and show what changed.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add ``fetch`` and ``logout`` to the app."""
    app.add_typer(fetch_app, name="fetch")
    app.command("logout")(logout)


def api_settings(
    config: Path | None,
    base_url: str | None,
    ca_file: Path | None,
    data_dir: Path | None,
    insecure: bool,
) -> Settings:
    from tcwebhook import console
    from tcwebhook.errors import ConfigError

    settings = load(
        config, tradecloud__base_url=base_url, tradecloud__ca_file=ca_file, data_dir=data_dir
    )
    api = settings.tradecloud.api_base_url
    if api.lower().startswith("http://"):
        # Login sends the integration user's password: never in clear text by accident.
        if not insecure:
            raise ConfigError(
                f"the Tradecloud API base URL {api} is plain HTTP, which would send the "
                "integration user's password unencrypted: use https://, or pass --insecure "
                "for a local test server"
            )
        console.warning(f"--insecure: credentials are sent unencrypted to {api}")
    return settings


def _fetch(
    kind: str,
    object_id: str,
    since: str | None,
    all_lines: bool,
    json_output: bool,
    raw: bool,
    documents: Path | None,
    settings: Settings,
) -> None:
    from tcwebhook.changes import parse_instant
    from tcwebhook.errors import ConfigError
    from tcwebhook.fetch import fetch_object

    if json_output and raw:
        raise ConfigError("--json and --raw cannot be combined: pick one output format")
    if since is not None and all_lines:
        raise ConfigError("--since and --all cannot be combined: --all already lists every line")
    instant = None
    if since is not None:
        instant = parse_instant(since)
        if instant is None:
            raise ConfigError(
                f"--since {since!r} is not a timestamp: use ISO 8601, e.g. 2025-06-04T12:00:00Z"
            )
    report = run(fetch_object(settings, kind, object_id, instant, all_lines, documents))  # type: ignore[arg-type]
    if raw:
        sys.stdout.buffer.write(report.fetched.raw)
        sys.stdout.buffer.flush()
    elif json_output:
        from tcwebhook import console

        console.print_json(report.filtered())
    else:
        render_report(report)


@fetch_app.command("order")
def order(
    order_id: str = typer.Argument(..., metavar="ID", help="Tradecloud order id."),
    since: str | None = SinceOption,
    all_lines: bool = AllOption,
    documents: Path | None = typer.Option(
        None,
        "--documents",
        metavar="DIR",
        help="Also download every document the order refers to into DIR.",
        show_default=False,
    ),
    json_output: bool = JsonOption,
    raw: bool = RawOption,
    base_url: str | None = BaseUrlOption,
    insecure: bool = InsecureOption,
    ca_file: Path | None = CaFileOption,
    config: Path | None = ConfigOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Show an order and its changed lines (default: those of its latest update)."""
    settings = api_settings(config, base_url, ca_file, data_dir, insecure)
    _fetch("order", order_id, since, all_lines, json_output, raw, documents, settings)


@fetch_app.command("shipment")
def shipment(
    shipment_id: str = typer.Argument(..., metavar="ID", help="Tradecloud shipment id."),
    since: str | None = SinceOption,
    all_lines: bool = AllOption,
    json_output: bool = JsonOption,
    raw: bool = RawOption,
    base_url: str | None = BaseUrlOption,
    insecure: bool = InsecureOption,
    ca_file: Path | None = CaFileOption,
    config: Path | None = ConfigOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Show a shipment and its changed lines, including those in load carriers."""
    settings = api_settings(config, base_url, ca_file, data_dir, insecure)
    _fetch("shipment", shipment_id, since, all_lines, json_output, raw, None, settings)


@fetch_app.command("document")
def document(
    object_id: str = typer.Argument(..., metavar="OBJECT_ID", help="The document's objectId."),
    output: Path | None = typer.Option(
        None,
        "--output",
        "-o",
        metavar="FILE",
        help="Where to save it (a file or a directory; default: its own name, here).",
        show_default=False,
    ),
    json_output: bool = JsonOption,
    base_url: str | None = BaseUrlOption,
    insecure: bool = InsecureOption,
    ca_file: Path | None = CaFileOption,
    config: Path | None = ConfigOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Download a document stored in Tradecloud (metadata, then its pre-signed URL)."""
    from tcwebhook import console
    from tcwebhook.fetch import download_document

    settings = api_settings(config, base_url, ca_file, data_dir, insecure)
    path = run(download_document(settings, object_id, output))
    size = path.stat().st_size
    if json_output:
        console.print_json({"objectId": object_id, "path": str(path), "bytes": size})
    else:
        console.stdout().print(f"Saved document {object_id} to {path} ({size} bytes)")


def logout(
    base_url: str | None = BaseUrlOption,
    insecure: bool = InsecureOption,
    ca_file: Path | None = CaFileOption,
    config: Path | None = ConfigOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """End the cached Tradecloud API session and delete its tokens."""
    from tcwebhook import console
    from tcwebhook.fetch import logout as end_session

    settings = api_settings(config, base_url, ca_file, data_dir, insecure)
    result = run(end_session(settings))
    where = settings.tradecloud.api_base_url
    if result.outcome == "logged-out":
        console.stdout().print(f"Logged out of {where}; the cached tokens are deleted.")
    elif result.outcome == "not-logged-in":
        console.stdout().print(f"Not logged in to {where}: there were no cached tokens.")
    else:
        console.warning(f"{result.reason}; the cached tokens are deleted all the same.")


# ------------------------------------------------------------------------------------------
# Rendering


def render_report(report: FetchReport) -> None:
    """Header panel, the selected lines as a table, then any downloads."""
    from rich.panel import Panel

    from tcwebhook import console

    out = console.stdout()
    header = (
        _order_header(report.object) if report.kind == "order" else _shipment_header(report.object)
    )
    title, rows = header
    out.print(Panel(_grid(rows), title=title, title_align="left", expand=False))
    out.print(_selection_caption(report))
    if report.selection:
        out.print(_order_table(report) if report.kind == "order" else _shipment_table(report))
    for download in report.downloads:
        label = download.code or download.name or "document"
        if download.path is None:
            out.print(f"[dim]{label}: metadata only, nothing to download[/dim]")
        else:
            out.print(f"Saved {label} to {download.path}")


def _grid(rows: list[tuple[str, str]]) -> RenderableType:
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for name, value in rows:
        grid.add_row(name, value)
    return grid


def _order_header(order: Mapping[str, Any]) -> tuple[str, list[tuple[str, str]]]:
    buyer, supplier = _map(order.get("buyerOrder")), _map(order.get("supplierOrder"))
    status = _map(order.get("status"))
    rows = [
        ("Tradecloud id", _s(order.get("id") or order.get("orderId"))),
        ("Buyer", _party(buyer.get("buyerParty"), buyer.get("companyId"))),
        (
            "Supplier",
            _party(buyer.get("supplierParty"), supplier.get("companyId"))
            + _suffix("account", buyer.get("supplierAccountNumber")),
        ),
        ("Status", f"{_s(status.get('processStatus'))} / {_s(status.get('logisticsStatus'))}"),
        ("Version", _s(order.get("version"))),
        ("Last updated", _s(order.get("lastUpdatedAt") or order.get("lastChangedAt"))),
    ]
    return f"Purchase order {_s(buyer.get('purchaseOrderNumber'))}", rows


def _shipment_header(shipment: Mapping[str, Any]) -> tuple[str, list[tuple[str, str]]]:
    supplier, buyer = _map(shipment.get("supplierShipment")), _map(shipment.get("buyerShipment"))
    status = _map(shipment.get("status")).get("processStatus") or shipment.get("processStatus")
    meta = _map(shipment.get("meta"))
    departure = _map(_map(shipment.get("locations")).get("departure"))
    rows = [
        ("Tradecloud id", _s(shipment.get("id"))),
        ("Buyer", _party(buyer.get("buyerParty"), buyer.get("companyId"))),
        (
            "Supplier",
            _party(supplier.get("supplierParty"), supplier.get("companyId"))
            + _suffix("account", buyer.get("supplierAccountNumber")),
        ),
        ("Status", _s(status)),
        ("Transport", _s(shipment.get("transportMode"))),
        ("Departure (ETD)", _s(departure.get("etdDate"))),
        ("Last updated", _s(meta.get("lastUpdatedAt") or meta.get("lastChangedAt"))),
    ]
    return f"Shipment {_s(supplier.get('shipmentNumber'))}", rows


def _selection_caption(report: FetchReport) -> str:
    shown = len(report.selection)
    total = report.line_count
    if report.mode == "all":
        return f"All {total} lines:"
    if report.mode == "since":
        when = _instant(report.since)
        what = f"{shown} of {total} lines updated after {when}"
    else:
        reference = _instant(report.reference)
        what = f"{shown} of {total} lines changed at the latest update ({reference})"
    if shown == 0:
        return what + ": none, only the header changed."
    return what + ":"


def _instant(value: datetime | None) -> str:
    if value is None:
        return "unknown"
    precision = "seconds" if not value.microsecond else "milliseconds"
    if value.microsecond % 1000:
        precision = "microseconds"
    return value.isoformat(timespec=precision).replace("+00:00", "Z")


def _order_table(report: FetchReport) -> RenderableType:
    from rich.table import Table

    table = Table(show_lines=True)
    for column in ("Pos", "Item", "Deliveries", "Net price", "Status"):
        table.add_column(column, overflow="fold")
    _timestamp_columns(table)
    for selected in report.selection:
        line = selected.line
        buyer_line = _map(line.get("buyerLine"))
        item = _map(buyer_line.get("item"))
        unit = _s(item.get("purchaseUnitOfMeasureIso"), "")
        number = _s(item.get("number"), "") + _suffix("rev", item.get("revision"))
        table.add_row(
            selected.key,
            _join(number, item.get("name")),
            _deliveries(line, buyer_line, unit),
            _prices(line, buyer_line),
            _line_status(_map(line.get("status"))),
            _s(line.get("lastUpdatedAt") or line.get("lastChangedAt")),
            _change(selected),
        )
    return table


def _shipment_table(report: FetchReport) -> RenderableType:
    from rich.table import Table

    table = Table(show_lines=True)
    for column in ("Despatch line", "Carrier", "Order line", "Item", "Quantity"):
        table.add_column(column, overflow="fold")
    _timestamp_columns(table)
    for selected in report.selection:
        line = selected.line
        item = _map(line.get("item"))
        supplier_line = _map(line.get("supplierLine"))
        unit = _s(item.get("purchaseUnitOfMeasureIso"), "")
        quantity = f"{_s(supplier_line.get('despatchQuantity'))} {unit}".strip()
        if supplier_line.get("backorderQuantity") not in (None, 0):
            quantity += f"\nbackorder {_s(supplier_line.get('backorderQuantity'))}"
        order_line = "/".join(
            _s(line.get(name), "") for name in ("purchaseOrderNumber", "purchaseOrderLinePosition")
        )
        if line.get("deliverySchedulePosition"):
            order_line += f" (delivery {_s(line.get('deliverySchedulePosition'))})"
        meta = _map(line.get("meta"))
        table.add_row(
            selected.key,
            selected.carrier or "loose",
            order_line,
            _join(_s(item.get("buyerItemNumber"), ""), item.get("buyerItemName")),
            quantity,
            _s(meta.get("lastUpdatedAt") or meta.get("lastChangedAt") or line.get("lastUpdatedAt")),
            _change(selected),
        )
    return table


def _timestamp_columns(table: Any) -> None:
    # Fold rather than cut with "…": a timestamp or key is useless half-shown.
    table.add_column("Last updated", overflow="fold")
    table.add_column("Change", overflow="fold")


def _deliveries(line: Mapping[str, Any], buyer_line: Mapping[str, Any], unit: str) -> str:
    current = line.get("deliverySchedule") or buyer_line.get("deliverySchedule") or []
    text = [f"{_s(d.get('quantity'))} {unit}  {_s(d.get('date'))}".strip() for d in _maps(current)]
    requested = line.get("deliveryScheduleIncludingRequests")
    if isinstance(requested, list) and requested and requested != current:
        text += [
            f"[yellow]requested: {_s(d.get('quantity'))} {unit}  {_s(d.get('date'))}[/yellow]"
            for d in _maps(requested)
        ]
    return "\n".join(text) or "—"


def _prices(line: Mapping[str, Any], buyer_line: Mapping[str, Any]) -> str:
    current = _price(line.get("prices") or buyer_line.get("prices"))
    requested = line.get("pricesIncludingRequests")
    if isinstance(requested, Mapping) and requested and requested != line.get("prices"):
        return f"{current}\n[yellow]requested: {_price(requested)}[/yellow]"
    return current


def _price(prices: Any) -> str:
    from rich.markup import escape

    from tcwebhook.inspector.lines import price_text

    return escape(price_text(prices, empty="—"))


def _line_status(status: Mapping[str, Any]) -> str:
    process = _s(status.get("processStatus"))
    if status.get("inProgressStatus"):
        process += f" ({_s(status.get('inProgressStatus'))})"
    return f"{process}\n{_s(status.get('logisticsStatus'))}"


def _change(selected: SelectedLine) -> str:
    return {"changed": "[green]changed[/green]", "unknown": "[yellow]unknown[/yellow]"}.get(
        selected.status, "[dim]unchanged[/dim]"
    )


def _party(party: Any, company_id: Any) -> str:
    names = _map(party).get("names")
    if isinstance(names, list) and names:
        return _s(names[0])
    return _s(company_id)


def _suffix(label: str, value: Any) -> str:
    return f" ({label} {value})" if value not in (None, "") else ""


def _join(first: str, second: Any) -> str:
    return "\n".join(part for part in (first, _s(second, "")) if part) or "—"


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _maps(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _s(value: Any, empty: str = "—") -> str:
    # Escape Rich markup: payload text is data, not formatting.
    from rich.markup import escape

    return escape(str(value)) if value not in (None, "") else empty
