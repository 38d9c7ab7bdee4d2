"""The store's clock: the time stamps every row carries."""

from __future__ import annotations

import time

# (second, "YYYY-MM-DDTHH:MM:SS") of the last call, replaced as one tuple so threads never see a
# torn pair. utc_now runs for every request on the event loop; formatting a datetime each time
# cost about three times as much as reusing the second's prefix.
_SECOND_PREFIX: tuple[int, str] = (-1, "")


def utc_now() -> str:
    """The current UTC time, ISO 8601 with milliseconds and a Z (2026-11-27T21:47:32.159Z)."""
    global _SECOND_PREFIX
    ns = time.time_ns()
    second, prefix = _SECOND_PREFIX
    if ns // 1_000_000_000 != second:
        second = ns // 1_000_000_000
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _SECOND_PREFIX = (second, prefix)
    return f"{prefix}.{ns // 1_000_000 % 1000:03d}Z"
