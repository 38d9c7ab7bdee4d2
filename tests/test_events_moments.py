"""The moments 'events purge --before' and 'events export --since' take: the same instants and
times ago as 'reconcile --since', through one parser."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tcwebhook.instants import parse_moment
from tcwebhook.store import Store
from tests.helpers.cli import assert_one_line_error, in_process
from tests.helpers.outbox import make_settings, open_for, store_body, with_message_id
from tests.helpers.paths import FIXTURES

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", NOW - timedelta(days=7)),
        ("12h", NOW - timedelta(hours=12)),
        ("90m", NOW - timedelta(minutes=90)),
        ("90", NOW - timedelta(seconds=90)),
        (" 1.5d ", NOW - timedelta(hours=36)),
        ("2026-10-01", datetime(2026, 10, 1, tzinfo=UTC)),
        ("2026-10-01T12:00:00Z", datetime(2026, 10, 1, 12, tzinfo=UTC)),
        ("2026-10-01T12:00:00+02:00", datetime(2026, 10, 1, 10, tzinfo=UTC)),
        ("2026-10-01T12:00:00", datetime(2026, 10, 1, 12, tzinfo=UTC)),  # no offset: UTC
        ("yesterday", None),
        ("7 days", None),
        ("-1d", None),
        ("", None),
    ],
)
def test_parse_moment(text: str, expected: datetime | None) -> None:
    assert parse_moment(text, now=NOW) == expected


def tcwebhook(*args: str) -> subprocess.CompletedProcess[str]:
    # The real command in this process: an interpreter per call cost seconds on a busy machine.
    return in_process(*args)


@pytest.fixture
def two_events(tmp_path: Path, stores: list[Store]) -> Path:
    """Two stored events without deliveries (so purge may delete them); the data directory."""
    settings = make_settings(tmp_path)
    store = open_for(settings, stores)
    body = json.loads((FIXTURES / "tradecloud" / "order-event.json").read_bytes())
    for n in range(2):
        store_body(store, settings, with_message_id(body, f"m-{n}"))
    return tmp_path / "data"


@pytest.mark.usefixtures("store_backend")
def test_purge_and_export_take_a_time_ago(two_events: Path) -> None:
    data = ("--data-dir", str(two_events))
    exported = tcwebhook("events", "export", "--since", "1h", *data)
    assert exported.returncode == 0, exported.stderr
    assert len(exported.stdout.splitlines()) == 2
    assert tcwebhook("events", "export", "--since", "2999-01-01", *data).stdout == ""

    kept = tcwebhook("events", "purge", "--before", "1d", *data)
    assert kept.returncode == 0, kept.stderr
    assert kept.stderr.strip() == "0 event(s) deleted"  # received just now, not a day ago
    purged = tcwebhook("events", "purge", "--before", "0s", *data)
    assert purged.returncode == 0, purged.stderr
    assert purged.stderr.strip() == "2 event(s) deleted"


@pytest.mark.parametrize("command", [("purge", "--before"), ("export", "--since")])
def test_an_unreadable_moment_is_one_line_naming_both_forms(
    two_events: Path, command: tuple[str, str]
) -> None:
    result = tcwebhook("events", *command, "last week", "--data-dir", str(two_events))
    assert_one_line_error(result, f"{command[1]} 'last week' is neither a timestamp nor a duration")
    assert "7d" in result.stderr and "2025-06-01" in result.stderr
