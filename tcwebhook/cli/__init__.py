"""The ``tcwebhook`` command: parse options, call one library function, render, exit.

The typer app and its commands are in ``tcwebhook.cli.commands``; this package itself loads
nothing, so that the receiver ``serve`` starts (``tcwebhook.cli.serve_process``) reaches its
output modules here without typer and every other command. ``app`` and ``main`` are looked up
on first use.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("app", "main", "entry"):
        from tcwebhook.cli import commands

        return getattr(commands, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
