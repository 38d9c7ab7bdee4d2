"""What ``tcwebhook store copy`` prints: a progress bar, then how many events were copied."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tcwebhook.store.copy import CopyReport


@contextmanager
def copy_progress(total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar over ``total`` events; yields the callback that advances it by n."""
    from tcwebhook.cli.common import progress_bar

    with progress_bar() as progress:
        task = progress.add_task("copying events", total=total)
        yield lambda n: progress.advance(task, n)


def render_copy(report: CopyReport, written: str, typed: str, json_output: bool) -> None:
    """``written``: the destination with a relative SQLite path resolved; ``typed``: as given."""
    from tcwebhook import console
    from tcwebhook.store import display_url

    if json_output:
        console.print_json(
            {"total": report.total, "copied": report.copied, "skipped": report.skipped}
        )
        return
    note = ""
    if written != typed:  # sqlite:///backup/x.db is easily read as /backup/x.db
        note = f" ({display_url(typed)} is relative to the working directory)"
    console.stdout().print(
        f"{report.copied} event(s) copied, {report.skipped} already there, "
        f"into {display_url(written)}{note}",
        markup=False,
        soft_wrap=True,
    )
