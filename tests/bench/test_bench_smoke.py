"""The benchmark machinery works (a very short ``bench/run --quick``); not a measurement."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(
    not (shutil.which("wrk") and shutil.which("webhook")),
    reason="bench/run needs wrk and webhook (it installs them itself when run by hand)",
)
def test_quick_bench_runs_and_checks_durability(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            str(REPOSITORY / "bench" / "run"),
            "--quick",
            "--seconds",
            "0.5",
            "--results",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=150,
        env={**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(REPOSITORY)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "quick.json").read_text())
    targets = {row["target"] for row in report["rows"]}
    assert {"baseline", "tcwebhook"} <= targets
    for cell in report["cells"]:
        if cell["target"].startswith("tcwebhook"):
            assert cell["stored"] >= cell["answered_2xx"] > 0
        if cell["target"] in ("baseline", "tcwebhook"):  # a peer may answer nothing in 0.5 s
            assert cell["cpu_us_per_2xx"] > 0, cell  # the server's CPU, against its own 2xx
    ours = [row for row in report["rows"] if row["target"] == "tcwebhook"]
    assert ours and all(row["cpu_ratio"] > 0 for row in ours), report["rows"]
