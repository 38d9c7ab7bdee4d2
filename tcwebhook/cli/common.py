"""Options and helpers shared by the commands."""

from __future__ import annotations

from collections.abc import Collection, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

if TYPE_CHECKING:
    from rich.progress import Progress

    from tcwebhook.config import Settings
    from tcwebhook.store import Store

T = TypeVar("T")


@dataclass(frozen=True)
class Invocation:
    """How the command was started (typer's context object)."""

    own_process: bool = False  # the process is the command's: ``serve`` may replace it


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


def load(config: Path | None, sections: Collection[str] | None = None, **flags: Any) -> Settings:
    """Settings from the config file, the environment and these dotted-key flags;
    ``sections``: only these top-level keys of the file (see ``load_settings``)."""
    from tcwebhook.config import load_settings

    dotted = {key.replace("__", "."): value for key, value in flags.items()}
    return load_settings(config, dotted, sections=sections)


# What commands that only use the event store read of the configuration.
STORE_SECTIONS = ("data_dir", "store")


def open_existing_store(
    config: Path | None, data_dir: Path | None, read_only: bool = True
) -> Store:
    """The store of a command that works on what was received: never created here (a missing
    database is one clear error), opened read-only unless the command changes it."""
    from tcwebhook.store import open_store

    settings = load(config, sections=STORE_SECTIONS, data_dir=data_dir)
    return open_store(settings.store_url, read_only=read_only, create=False)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    import asyncio

    return asyncio.run(coroutine)


def show_flags_as_flags() -> None:
    """Make ``--help`` list an on/off flag without a ``<bool>`` value placeholder.

    Recent typer releases print every option's type in the rich help, flags included, so
    ``--insecure <bool>`` reads as if it took a value; a flag takes none, so it shows no type.
    """
    from typer.core import TyperOption

    original = getattr(TyperOption, "display_type_rich", None)
    if original is None or getattr(original, "_flags_shown_bare", False):
        return

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        if self.is_flag and self.metavar is None:
            return None
        return original(self, ctx)

    display_type_rich._flags_shown_bare = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


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
