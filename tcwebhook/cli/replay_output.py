"""What ``tcwebhook replay`` prints: one line per event, a progress bar, a summary, JSON."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tcwebhook.replay import ReplayReport, SendResult


def warn_insecure() -> None:
    from tcwebhook import console

    console.warning(
        "--insecure: the server certificate is not verified; Tradecloud always verifies it"
    )


def render(report: ReplayReport, json_output: bool, show_response: bool, summary: bool) -> None:
    """The report as JSON, or a summary table after a load run or several events (each event's
    line was printed as it was answered)."""
    from tcwebhook import console

    if json_output:
        console.print_json(report.to_json(with_bodies=show_response))
    elif summary or len(report.results) > 1:
        render_summary(report)


@contextmanager
def progress(total: int) -> Iterator[Callable[[SendResult], None]]:
    """A progress bar for load mode; yields the callback that advances it per answer."""
    from tcwebhook.cli.common import progress_bar

    with progress_bar() as bar:
        task = bar.add_task("sending", total=total)

        def advance(result: SendResult) -> None:
            bar.advance(task)
            if not result.delivered:
                bar.update(task, description="[yellow]sending (some not delivered)")

        yield advance


_STYLE = {
    "delivered": "green",
    "dropped": "red",
    "retried": "yellow",
    "undocumented": "red",
    "no-answer": "red",
}


def printer(show_response: bool) -> Callable[[SendResult], None]:
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
