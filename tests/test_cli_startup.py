"""Every command starts without the library: ``--help``, ``--version`` and a command's option
parsing load only the command modules (tcwebhook/cli/commands.py says why), and a command loads
only what it uses."""

from __future__ import annotations

import subprocess
import sys

import orjson

# What a command imports when it runs, never before.
LIBRARY = (
    "tcwebhook.config",
    "tcwebhook.events",
    "tcwebhook.inspector",
    "tcwebhook.reconcile",
    "tcwebhook.requestlog",
    "tcwebhook.server",
    "tcwebhook.store.base",
    "tcwebhook.store.postgres",
    "tcwebhook.store.sqlite",
    "tcwebhook.tlscheck",
    "tcwebhook.tradecloud",
    "aiohttp",
    "cryptography",
    "jinja2",
    "pydantic",
    "rich",
)


def loaded_by(*modules: str) -> list[str]:
    """The modules a fresh interpreter holds after importing ``modules``."""
    script = (
        f"import json, sys\nimport {', '.join(modules)}\nprint(json.dumps(sorted(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, check=True, timeout=60
    )
    loaded: list[str] = orjson.loads(result.stdout)
    return loaded


def test_the_command_line_loads_no_library_before_a_command_runs() -> None:
    loaded = loaded_by("tcwebhook.cli.commands")
    assert "tcwebhook.cli.events" in loaded  # every command module registered itself
    assert [name for name in loaded if name.startswith(LIBRARY)] == []


def test_a_delivery_status_needs_no_api_client() -> None:
    # status, events list and events show tell held-back deliveries, fetches included
    loaded = loaded_by("tcwebhook.delivery.status", "tcwebhook.delivery.routing")
    assert "tcwebhook.delivery.status" in loaded
    assert [name for name in loaded if name.startswith(("tcwebhook.tradecloud", "aiohttp"))] == []
