"""Moments a person types on the command line: an ISO 8601 instant (a date alone is midnight
UTC; no offset is UTC) or a time ago (``90m``, ``12h``, ``7d``). One parser for every command."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tcwebhook.changes import parse_instant
from tcwebhook.config import parse_duration
from tcwebhook.errors import UsageError

EXAMPLES = "ISO 8601 (2025-06-01 or 2025-06-01T00:00:00Z) or a time ago (90m, 12h, 7d)"


def parse_moment(text: str, now: datetime | None = None) -> datetime | None:
    """The aware UTC instant ``text`` names, or None when it is neither form."""
    instant = parse_instant(text)
    if instant is not None:
        return instant
    seconds = parse_duration(text.strip())
    if seconds is None:
        return None
    return (now or datetime.now(UTC)) - timedelta(seconds=seconds)


def moment_option(flag: str, text: str, now: datetime | None = None) -> datetime:
    """``parse_moment`` for the value of ``flag``; a UsageError saying both forms otherwise."""
    moment = parse_moment(text, now)
    if moment is None:
        raise UsageError(f"{flag} {text!r} is neither a timestamp nor a duration: use {EXAMPLES}")
    return moment
