"""Where the tests find this checkout and their fixture files."""

from __future__ import annotations

from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
FIXTURES = REPOSITORY / "tests" / "fixtures"
SAMPLES = FIXTURES / "tradecloud"
