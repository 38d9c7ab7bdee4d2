"""The delivery cell's driver (bench/delivery.py) works: short runs, not a measurement."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]


def run(*arguments: str) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, str(REPOSITORY / "bench" / "delivery.py"), *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report: dict[str, float] = json.loads(result.stdout)
    return report


def test_backlog_drains_every_event_into_a_file() -> None:
    report = run("backlog", "--events", "300")
    assert report["events"] == 300 and report["files_per_s"] > 0


def test_ingest_at_a_fixed_rate_counts_files_while_serving() -> None:
    report = run("ingest", "--rate", "40", "--seconds", "1.5", "--connections", "4")
    assert report["non_2xx"] == 0 and report["ingest_per_s"] > 0
    assert report["files_after"] == 60  # every acknowledged event was delivered in the end
