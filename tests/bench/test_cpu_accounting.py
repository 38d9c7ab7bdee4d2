"""The benchmark's CPU figure counts the whole server: every thread and every forked process of
its group, and nothing else (a measurement, so it is checked against known work)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

REPOSITORY = Path(__file__).resolve().parents[2]

# Half a second of CPU in the main thread, in a second thread and in a forked child each, then
# wait to be told to go (so that nothing has exited when the group is read).
BURN = """
import os, sys, threading, time

def burn(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass

child = os.fork()
thread = threading.Thread(target=burn, args=(0.5,))
thread.start()
burn(0.5)
thread.join()
if child == 0:
    sys.stdout.write("")
else:
    print("ready", flush=True)
sys.stdin.read()
"""


def _harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("harness", REPOSITORY / "bench" / "harness.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("harness", module)  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_group_cpu_counts_threads_and_forked_processes() -> None:
    harness = _harness()
    with subprocess.Popen(
        [sys.executable, "-c", BURN],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        assert process.stdin is not None and process.stdout is not None
        try:
            assert process.stdout.readline() == "ready\n"
            time.sleep(0.5)  # the child's second half second, should it lag behind
            counted = harness.group_cpu_seconds(process.pid)
        finally:
            process.stdin.close()
            process.wait(timeout=10)
    # Half a second in each of two threads of the parent and of the child: 2 s of work, and
    # nothing of this test's own process, which is not in the group.
    assert 1.8 <= counted < 4, counted


def test_a_cell_that_answered_nothing_does_not_make_its_row_cheaper() -> None:
    harness = _harness()
    cells = [
        harness.Cell("baseline", "small", 64, cpu_s=0.2, measured_2xx=1000),
        harness.Cell("tcwebhook", "small", 64, cpu_s=0.6, measured_2xx=1000),
        harness.Cell("tcwebhook", "small", 64, cpu_s=0.3, measured_2xx=0),  # still handshaking
    ]
    rows = {row["target"]: row for row in harness.summarise(cells)}
    # 0.9 s over 1,000 answers, not the mean of 600 us and "free"
    assert rows["tcwebhook"]["cpu_us_per_2xx"] == 900.0
    assert rows["tcwebhook"]["cpu_ratio"] == 4.5
    silent = harness.summarise([harness.Cell("baseline", "small", 64, cpu_s=0.2)])
    assert silent[0]["cpu_ratio"] is None  # no answers: no figure, rather than a zero
