"""Benchmark: what does starting a command cost, in CPU time and wall time?

Runs each command as a user would (``python -m tcwebhook …``, a fresh interpreter each time) on an
empty data directory, for one or more checkouts alternated run by run, so that a before and an
after share the machine's noise. Reports the median per command and checkout.

    python bench/cli_startup.py [--runs 10] [ROOT ...]    (default ROOT: this checkout)

A command that fails (``events list`` on an empty data directory exits 2) is timed all the same:
its cost is the start-up, which is what this measures.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = (
    ("--version",),
    ("--help",),
    ("samples", "list"),
    ("events", "list"),
    ("status",),
)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(root: Path, command: tuple[str, ...], data_dir: str) -> tuple[float, float]:
    """Wall and CPU seconds of one run of ``command`` with ``root``'s package."""
    env = {**os.environ, "PYTHONPATH": str(root), "TCWEBHOOK_DATA_DIR": data_dir}
    cpu, started = children_cpu(), time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "tcwebhook", *command],
        env=env,
        cwd=data_dir,  # python -m puts the working directory first on the path
        capture_output=True,
        check=False,
        timeout=60,
    )
    return time.perf_counter() - started, children_cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("roots", nargs="*", type=Path, default=[Path(__file__).parents[1]])
    arguments = parser.parse_args()
    roots = [root.resolve() for root in arguments.roots]
    with tempfile.TemporaryDirectory() as data_dir:
        for command in COMMANDS:
            for root in roots:
                run_once(root, command, data_dir)  # the first run fills the caches
            results: dict[Path, list[tuple[float, float]]] = {root: [] for root in roots}
            for _ in range(arguments.runs):
                for root in roots:
                    results[root].append(run_once(root, command, data_dir))
            for root in roots:
                wall = statistics.median(run[0] for run in results[root])
                cpu = statistics.median(run[1] for run in results[root])
                print(f"{' '.join(command):14} {root.name:12} wall {wall:.3f} s  cpu {cpu:.3f} s")


if __name__ == "__main__":
    main()
