"""``serve --inspector`` / ``--no-inspector`` and ``tcwebhook inspect`` on the command line."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers.cli import assert_one_line_error, tcwebhook


def test_an_exposed_inspector_without_tls_and_login_is_refused() -> None:
    for command in (
        ("serve", "--port", "0", "--inspector", "0.0.0.0:4041"),
        ("inspect", "--listen", "0.0.0.0:4041"),
    ):
        assert_one_line_error(tcwebhook(*command), "refusing to serve the inspector on 0.0.0.0")


def test_serve_without_the_inspector_says_none_in_its_banner() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tcwebhook", "serve", "--port", "0", "--no-inspector",
         "--log-format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    with process:
        assert process.stdout is not None
        banner = json.loads(process.stdout.readline())
        process.terminate()
        assert process.wait(timeout=15) == 0
    assert banner["listening"] and banner["inspector_url"] is None
