"""Options and helpers shared by the commands."""

from __future__ import annotations

from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

if TYPE_CHECKING:
    from rich.progress import Progress

    from tcwebhook.config import Settings

T = TypeVar("T")

ConfigOption = typer.Option(
    None,
    "--config",
    "-c",
    help="YAML configuration file (default: $TCWEBHOOK_CONFIG, else ./tcwebhook.yaml if present).",
    show_default=False,
)
DataDirOption = typer.Option(
    None,
    "--data-dir",
    help="Directory for the dev CA, generated token and database.",
    show_default=False,
)
JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON.")


def load(config: Path | None, **flags: Any) -> Settings:
    """Settings from the config file, the environment and these dotted-key flags."""
    from tcwebhook.config import load_settings

    return load_settings(config, {key.replace("__", "."): value for key, value in flags.items()})


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    import asyncio

    return asyncio.run(coroutine)


def progress_bar() -> Progress:
    """A progress bar on stderr (counts, elapsed, remaining) that disappears when done."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from tcwebhook import console

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console.stderr(),
        transient=True,
    )
