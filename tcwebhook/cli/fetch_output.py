"""What ``tcwebhook fetch`` and ``tcwebhook logout`` print: the object's header panel, its
selected lines as a table, downloads, and the outcome of a logout."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

    from rich.console import RenderableType

    from tcwebhook.changes import SelectedLine
    from tcwebhook.fetch import FetchReport
    from tcwebhook.tradecloud import LogoutResult


def render(report: FetchReport, json_output: bool, raw: bool) -> None:
    """The API response untouched (``raw``), the filtered object as JSON, or tables."""
    if raw:
        sys.stdout.buffer.write(report.fetched.raw)
        sys.stdout.buffer.flush()
    elif json_output:
        from tcwebhook import console

        console.print_json(report.filtered())
    else:
        render_report(report)


def render_download(object_id: str, path: Path, json_output: bool) -> None:
    from tcwebhook import console

    size = path.stat().st_size
    if json_output:
        console.print_json({"objectId": object_id, "path": str(path), "bytes": size})
    else:
        console.stdout().print(f"Saved document {object_id} to {path} ({size} bytes)")


def render_logout(result: LogoutResult, where: str) -> None:
    from tcwebhook import console

    if result.outcome == "logged-out":
        console.stdout().print(f"Logged out of {where}; the cached tokens are deleted.")
    elif result.outcome == "not-logged-in":
        console.stdout().print(f"Not logged in to {where}: there were no cached tokens.")
    else:
        console.warning(f"{result.reason}; the cached tokens are deleted all the same.")


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
