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
            "--rounds",
            "1",  # alternating rounds is a loop; pooling them has its own test
            "--no-delivery",  # tests/bench/test_delivery_bench.py runs its driver
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
    assert {"baseline", "floor", "tcwebhook"} <= targets
    for cell in report["cells"]:
        if cell["target"].startswith("tcwebhook") or cell["target"] == "floor":
            assert cell["stored"] >= cell["answered_2xx"] > 0
        if cell["target"] in ("baseline", "tcwebhook"):
            assert cell["cpu_s"] > 0, cell  # the server's whole group was read
            # a loaded machine may still be busy with 64 handshakes after 0.5 s
            assert (cell["cpu_us_per_2xx"] > 0) == (cell["measured_2xx"] > 0), cell
    answered = {
        target: sum(c["measured_2xx"] for c in report["cells"] if c["target"] == target)
        for target in ("baseline", "tcwebhook")
    }
    ours = next(row for row in report["rows"] if row["target"] == "tcwebhook")
    if all(answered.values()):
        assert ours["cpu_ratio"] > 0, report["rows"]
    else:
        assert ours["cpu_ratio"] is None or ours["cpu_ratio"] == 0, report["rows"]
