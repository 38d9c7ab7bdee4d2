"""Every command starts without the library: ``--help``, ``--version`` and a command's option
parsing load only the command modules (tcwebhook/cli/commands.py says why)."""

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


def test_the_command_line_loads_no_library_before_a_command_runs() -> None:
    script = (
        "import json, sys\nimport tcwebhook.cli.commands\nprint(json.dumps(sorted(sys.modules)))\n"
    )
    loaded = orjson.loads(
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, check=True, timeout=60
        ).stdout
    )
    assert "tcwebhook.cli.events" in loaded  # every command module registered itself
    assert [name for name in loaded if name.startswith(LIBRARY)] == []
