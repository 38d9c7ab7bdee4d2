"""``tcwebhook store``: manage the event store itself (``store copy SRC DST``)."""

from __future__ import annotations

from pathlib import Path

import typer

from tcwebhook.cli.common import JsonOption

store_app = typer.Typer(help="Manage the event store.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(store_app, name="store")


@store_app.command("copy")
def copy(
    source: str = typer.Argument(
        ..., help="Store to copy from: sqlite:///path/events.db or postgresql://…"
    ),
    destination: str = typer.Argument(..., help="Store to copy into (created and migrated)."),
    json: bool = JsonOption,
) -> None:
    """Copy every event, delivery and fetched object from one store to another.

    Events keep their ids; run it again to copy only what is missing (idempotent).
    """
    from tcwebhook.cli import store_output
    from tcwebhook.store import open_store
    from tcwebhook.store.copy import copy_store

    source, written = resolve_sqlite_url(source), resolve_sqlite_url(destination)
    src = open_store(source, read_only=True)  # never create or migrate what we copy from
    try:
        dst = open_store(written)
        try:
            if json:
                report = copy_store(src, dst)
            else:
                with store_output.copy_progress(src.count()) as advance:
                    report = copy_store(src, dst, advance)
        finally:
            dst.close()
    finally:
        src.close()
    store_output.render_copy(report, written, destination, json)


def resolve_sqlite_url(url: str) -> str:
    """``sqlite:///backup/events.db`` as the absolute path it means (relative to the working
    directory); any other URL as it is."""
    from tcwebhook.store import SQLITE_PREFIX

    if not url.startswith(SQLITE_PREFIX) or len(url) == len(SQLITE_PREFIX):
        return url
    path = Path(url[len(SQLITE_PREFIX) :]).expanduser()
    return url if path.is_absolute() else SQLITE_PREFIX + str(Path.cwd() / path)
