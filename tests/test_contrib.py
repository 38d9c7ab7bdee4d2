"""The example systemd units are accepted by ``systemd-analyze verify`` (skipped without it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[1] / "contrib" / "systemd"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_units_verify(tmp_path: Path) -> None:
    for unit in UNITS.iterdir():
        text = unit.read_text()
        # The unit names the installed command; here any executable stands in for it.
        (tmp_path / unit.name).write_text(text.replace("/usr/local/bin/tcwebhook", "/bin/true"))
    units = sorted(str(path) for path in tmp_path.iterdir())
    result = subprocess.run(
        ["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "tcwebhook" not in result.stderr, result.stderr
