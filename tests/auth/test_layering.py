"""The auth package stands below the server and the inspector, which both use it."""

from __future__ import annotations

import subprocess
import sys

import orjson

ABOVE_AUTH = ("tcwebhook.server", "tcwebhook.inspector", "tcwebhook.cli")


def test_auth_imports_nothing_from_the_server_or_the_inspector() -> None:
    script = (
        "import json, sys\n"
        "import tcwebhook.auth, tcwebhook.auth.entra, tcwebhook.auth.keys, tcwebhook.auth.static\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    loaded = orjson.loads(
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, check=True, timeout=60
        ).stdout
    )
    assert "tcwebhook.auth.static" in loaded
    assert [name for name in loaded if name.startswith(ABOVE_AUTH)] == []
