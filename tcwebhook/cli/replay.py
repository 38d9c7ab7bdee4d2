"""``tcwebhook replay``: send events to a webhook exactly as Tradecloud does."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from tcwebhook.cli.common import ConfigOption, JsonOption

if TYPE_CHECKING:
    from collections.abc import Callable

    from tcwebhook.replay import ReplayOptions, ReplayReport, SendResult, Source, Target


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("replay", no_args_is_help=True)(replay_command)


def replay_command(
    sources: list[str] = typer.Argument(
        ...,
        metavar="SOURCE...",
        help="A JSON file, a directory (its *.json in name order), '-' (stdin) or a sample name.",
        show_default=False,
    ),
    url: str | None = typer.Option(
        None,
        "--url",
        help="Webhook URL as entered in the Tradecloud portal "
        "(default: the local 'tcwebhook serve' of this configuration).",
        show_default=False,
    ),
    token: str | None = typer.Option(
        None, "--token", help="Send 'Authorization: Bearer TOKEN'.", show_default=False
    ),
    bearer_command: str | None = typer.Option(
        None,
        "--bearer-from-command",
        metavar="CMD",
        help="Send 'Authorization: Bearer' with the token CMD prints (e.g. an Entra token "
        "from 'az account get-access-token --query accessToken -o tsv').",
        show_default=False,
    ),
    user: str | None = typer.Option(None, "--user", help="Basic auth user.", show_default=False),
    password: str | None = typer.Option(
        None, "--password", help="Basic auth password.", show_default=False
    ),
    ca_file: Path | None = typer.Option(
        None,
        "--ca-file",
        help="Trust this CA (PEM) for the server certificate.",
        show_default=False,
    ),
    insecure: bool = typer.Option(
        False, "--insecure", help="Do not verify the server certificate (prints a warning)."
    ),
    method: str = typer.Option(
        "POST", "--method", help="POST (current) or GET (legacy notification with the id only)."
    ),
    id_in: str = typer.Option(
        "path", "--id-in", help="GET only: put the id in the 'path' or 'query'."
    ),
    fresh_ids: bool = typer.Option(
        False, "--fresh-ids", help="Give every event a new meta.messageId."
    ),
    assignments: list[str] | None = typer.Option(
        None,
        "--set",
        help="Override a field: dotted PATH=VALUE, VALUE as JSON (repeatable), "
        "e.g. --set eventName=OrderLinesRejectedBySupplier.",
        show_default=False,
    ),
    show_response: bool = typer.Option(False, "--show-response", help="Print response bodies."),
    retry: bool = typer.Option(
        False, "--retry", help="Retry >500 and connection errors with back-off, like Tradecloud."
    ),
    max_attempts: int = typer.Option(5, "--max-attempts", help="Attempts per event with --retry."),
    max_delay: float = typer.Option(
        30.0, "--max-delay", help="Longest back-off wait in seconds with --retry."
    ),
    count: int | None = typer.Option(
        None, "--count", help="Load mode: send this many events (fresh ids), cycling the sources."
    ),
    concurrency: int = typer.Option(1, "--concurrency", help="Requests in flight at once."),
    timeout: float = typer.Option(30.0, "--timeout", help="Seconds to wait for each answer."),
    json_output: bool = JsonOption,
    config: Path | None = ConfigOption,
) -> None:
    """Send events exactly as Tradecloud does, and say what Tradecloud would do with each answer.

    Exit code 0 when every event was delivered (2xx), 1 when any was not, 2 for usage and
    environment errors.
    """
    from tcwebhook import console
    from tcwebhook.cli.common import load, run
    from tcwebhook.errors import EXIT_CHECK_FAILED, ReplaySourceError
    from tcwebhook.replay import (
        ReplayOptions,
        RetryPolicy,
        bearer_from_command,
        load_sources,
        parse_assignment,
        replay,
        resolve_target,
    )

    method_name = method.upper()
    if method_name not in ("POST", "GET"):
        raise ReplaySourceError(f"--method must be POST or GET (got {method!r})")
    if id_in not in ("path", "query"):
        raise ReplaySourceError(f"--id-in must be 'path' or 'query' (got {id_in!r})")
    options = ReplayOptions(
        fresh_ids=fresh_ids,
        assignments=tuple(parse_assignment(text) for text in assignments or ()),
        count=count,
        concurrency=concurrency,
        retry=RetryPolicy(retry, max_attempts, min(0.5, max_delay), max_delay),
        timeout=timeout,
        keep_response=show_response or json_output,
    )
    if bearer_command is not None:
        if token:
            raise ReplaySourceError("give either --token or --bearer-from-command, not both")
        token = bearer_from_command(bearer_command)
    settings = load(config)
    stdin = sys.stdin.buffer if "-" in sources else None
    loaded = load_sources(sources, stdin, store_url=settings.store_url)
    target = resolve_target(
        settings,
        url=url,
        token=token,
        user=user,
        password=password,
        ca_file=ca_file,
        insecure=insecure,
        method="POST" if method_name == "POST" else "GET",
        id_in="path" if id_in == "path" else "query",
    )
    if insecure:
        console.warning(
            "--insecure: the server certificate is not verified; Tradecloud always verifies it"
        )
    load_mode = count is not None
    if load_mode and not json_output:
        report = _run_with_progress(loaded, target, options, count or 0)
    else:
        on_result = None if json_output else _printer(show_response)
        report = run(replay(loaded, target, options, on_result))
    if json_output:
        console.print_json(report.to_json(with_bodies=show_response))
    elif load_mode or len(report.results) > 1:
        render_summary(report)
    if not report.all_delivered:
        raise typer.Exit(EXIT_CHECK_FAILED)


def _run_with_progress(
    loaded: list[Source], target: Target, options: ReplayOptions, total: int
) -> ReplayReport:
    from tcwebhook.cli.common import progress_bar, run
    from tcwebhook.replay import replay

    with progress_bar() as progress:
        task = progress.add_task("sending", total=total)

        def advance(result: SendResult) -> None:
            progress.advance(task)
            if not result.delivered:
                progress.update(task, description="[yellow]sending (some not delivered)")

        return run(replay(loaded, target, options, advance))


# ------------------------------------------------------------------------------------------
# Rendering

_STYLE = {
    "delivered": "green",
    "dropped": "red",
    "retried": "yellow",
    "undocumented": "red",
    "no-answer": "red",
}


def _printer(show_response: bool) -> Callable[[SendResult], None]:
    def print_result(result: SendResult) -> None:
        render_result(result, show_response)

    return print_result


def render_result(result: SendResult, show_response: bool) -> None:
    """One line per event: status, time, what Tradecloud would do; then advice if needed."""
    from rich.text import Text

    from tcwebhook import console
    from tcwebhook.replay import TRADECLOUD_REACTION

    style = _STYLE[result.verdict]
    status = str(result.status) if result.status is not None else "---"
    latency = f"{result.latency_ms:.0f} ms" if result.latency_ms is not None else result.error
    line = Text.assemble(
        (f"{status:>3}", f"bold {style}"),
        f"  {latency:>7}  ",
        (result.source, "bold"),
        f" ({result.event_name})" if result.event_name else "",
        f"  {result.method} {_path(result.url)}  ",
        (TRADECLOUD_REACTION[result.verdict], style),
    )
    if result.attempts > 1:
        line.append(f" (after {result.attempts} attempts)")
    console.stdout().print(line)
    if result.status == 500:
        console.warning(
            "Tradecloud never retries a 500, so this event would be lost; answer 503 for "
            "transient failures so that Tradecloud retries"
        )
    elif result.verdict == "no-answer" and result.error:
        console.warning(f"no answer: {result.error}")
    if show_response and result.response_body:
        console.stdout().print(Text(result.response_body.rstrip(), style="dim"))


def _path(url: str) -> str:
    from yarl import URL

    return URL(url).raw_path_qs


def render_summary(report: ReplayReport) -> None:
    from rich.table import Table

    from tcwebhook import console

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} ms"

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    delivered = sum(result.delivered for result in report.results)
    table.add_row("sent", str(len(report.results)))
    table.add_row("delivered", f"{delivered} of {len(report.results)}")
    table.add_row(
        "answers",
        ", ".join(
            f"{'HTTP ' if status.isdigit() else ''}{status}: {n}"
            for status, n in report.status_counts.items()
        ),
    )
    table.add_row("duration", f"{report.wall_seconds:.2f} s")
    table.add_row("throughput", f"{report.throughput:.1f} events/s")
    table.add_row(
        "latency",
        "p50 {}  p95 {}  p99 {}".format(*(ms(report.latency_percentile(p)) for p in (50, 95, 99))),
    )
    console.stdout().print(table)
