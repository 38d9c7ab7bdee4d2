"""What ``tcwebhook serve`` prints: the banner, one line per request and delivery, the stop line.

Everything serve logs goes to stdout (banner, request and delivery lines, the stop line); stderr is
for errors and warnings. Request lines bypass Rich: they are written at full request rate.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tcwebhook.delivery.sinks import TaskPolicy
    from tcwebhook.server.app import RequestLog
    from tcwebhook.server.plan import ServePlan
    from tcwebhook.store import TaskRecord


ERROR_LIMIT = 400  # characters of an error in a request line


def print_banner(
    serve_plan: ServePlan, port: int, json_lines: bool, inspector: dict[str, str | None]
) -> None:
    from rich.markup import escape

    from tcwebhook import console
    from tcwebhook.store.base import display_url

    store = display_url(serve_plan.settings.store_url)  # never the password
    paths = serve_plan.settings.server.paths
    order_url, shipment_url = (
        serve_plan.url(paths.order, port),
        serve_plan.url(paths.shipment, port),
    )
    if json_lines:
        console.print_json_line(
            {"listening": True, "order_url": order_url, "shipment_url": shipment_url,
             "ca_file": serve_plan.dev_ca, "store": store,
             "inspector_url": inspector.get("url")}
        )  # fmt: skip
        return
    out = console.stdout()
    out.print(f"[bold green]tcwebhook[/] listening on port {port} (TLS 1.2/1.3)", soft_wrap=True)
    out.print(f"  order webhooks:    {order_url}", soft_wrap=True)
    out.print(f"  shipment webhooks: {shipment_url}", soft_wrap=True)
    out.print(f"  events stored in:  {escape(store)}", soft_wrap=True)
    if inspector.get("url"):
        out.print(f"  inspector:         {inspector['url']} (open it in a browser)", soft_wrap=True)
    elif inspector.get("problem"):
        out.print(
            f"  inspector:         not started: {inspector['problem']}",
            style="yellow",
            markup=False,
            soft_wrap=True,
        )
    if serve_plan.dev_ca is not None:
        out.print(
            f"  development CA:    {serve_plan.dev_ca} (trust it in local clients)", soft_wrap=True
        )
    if serve_plan.dev_token_file is not None:
        out.print(
            f"  bearer token:      generated, in {serve_plan.dev_token_file} (mode 0600)",
            soft_wrap=True,
        )
    out.print("Try it:", style="bold", soft_wrap=True)
    out.print(_curl_line(serve_plan, order_url), soft_wrap=True, markup=False, highlight=False)
    out.print(
        "  (no order-event.json at hand? tcwebhook samples show order-issued --json > "
        "order-event.json, or simply: tcwebhook replay order-issued)",
        style="dim",
        markup=False,
        soft_wrap=True,
    )
    out.print("Stop with Ctrl-C.", style="dim", soft_wrap=True)


def print_stopping(json_lines: bool) -> None:
    from tcwebhook import console

    message = "stopping: finishing the requests and deliveries under way"
    if json_lines:
        console.print_json_line({"stopping": True, "message": message})
    else:
        console.stdout().print(message, style="dim", markup=False, highlight=False)


def _curl_line(serve_plan: ServePlan, url: str) -> str:
    """A ready-to-paste curl command that never contains the secret itself."""
    from tcwebhook.local import curl_authorization

    header = curl_authorization(serve_plan.settings)
    cacert = f"--cacert {serve_plan.dev_ca} " if serve_plan.dev_ca else ""
    return (
        f"curl {cacert}{header} -H 'Content-Type: application/json' "
        f"--data-binary @order-event.json {url}"
    )


def text_line(entry: RequestLog) -> None:
    from tcwebhook.console import printable

    colour = sys.stdout.isatty()
    status = f"{entry.status}"
    if colour:
        code = "32" if entry.status < 300 else "33" if entry.status < 500 else "31"
        status = f"\x1b[{code}m{status}\x1b[0m"
    clock = entry.time[11:23]
    error = printable(entry.error, ERROR_LIMIT) if entry.error else ""  # may quote the client
    if entry.kind is None:
        line = f"{clock}  {status}  {entry.method} {printable(entry.path)}  {error}"
        if entry.client:
            line += f"  from {printable(entry.client)}"
    else:
        what = entry.event_name or f"GET notification {entry.resource_id}"
        parts = [clock, status, entry.kind, printable(what), printable(entry.number or "-")]
        if entry.changed_lines is not None:
            parts.append(
                f"{entry.changed_lines} line{'s' if entry.changed_lines != 1 else ''} changed"
            )
        if entry.duplicate:
            parts.append(f"duplicate of #{entry.event_id}")
        elif entry.event_id is not None:
            parts.append(f"#{entry.event_id}")
        if entry.unknown_event:
            parts.append("(unknown event name: stored anyway)")
        if error:
            parts.append(error)
        if entry.client:
            parts.append(f"from {printable(entry.client)}")
        line = "  ".join(parts)
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def json_line(entry: RequestLog) -> None:
    import orjson

    # orjson encodes the dataclass itself (dataclasses.asdict deep-copies every field), straight
    # to bytes with the newline: the fields are plain str/int/float/bool/None, so the line is the
    # same as console.print_json_line's, without its text round trip. Every other line on stdout
    # is flushed as it is written, so nothing is pending in the text layer.
    # docs/performance-notes.md#12-a-cheaper-request-log-line-and-timestamp
    stdout = getattr(sys.stdout, "buffer", None)
    if stdout is None:  # a text-only stream stands in for stdout (an embedding tool)
        from tcwebhook import console

        console.print_json_line(entry)
        return
    stdout.write(orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE))
    stdout.flush()


def json_delivery(policy: TaskPolicy, task: TaskRecord, state: str, error: str | None) -> None:
    from tcwebhook import console

    console.print_json_line(
        {"delivery": policy.name, "event_id": task.event_id, "state": state, "error": error}
    )
