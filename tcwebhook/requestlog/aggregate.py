"""What of a stream of refused requests gets written, and what old rows go.

A flood must neither fill the disk nor slow the receiver, so three bounds hold whatever arrives:

- identical failures (same client, method, path, status and reason) within ``window`` seconds
  become one row with a count;
- a token bucket caps the writes: at most ``burst + rate * T`` in any ``T`` seconds;
- at most ``max_groups`` distinct failures are held in memory; beyond that a request is only
  counted, and the count is written as one "N more not recorded" row (one per window at most).

Each write carries a ``row_key`` and the whole count so far: the store inserts the row or replaces
its count (an upsert), so writing a group again never counts a request twice. Every offered
request is in exactly one row's count. Time is given by the caller (seconds, monotonic), nothing
here sleeps or reads a clock, and ``offer`` costs O(1) amortised: it can run on the receiver's
event loop, handing the writes to a writer off it.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from tcwebhook.requestlog.records import RequestRecord


@dataclass(frozen=True)
class Limits:
    """The request log's bounds (configuration keys map onto these)."""

    window: float = 60.0  # seconds over which identical failures share one row
    update_interval: float = 5.0  # an open row's count is rewritten at most this often
    rate: float = 5.0  # writes per second, sustained
    burst: int = 20  # writes at once after a quiet spell
    max_groups: int = 1000  # distinct failures held in memory
    max_rows: int = 10_000  # retention: rows kept
    max_age: float = 7 * 86400.0  # retention: seconds a row is kept

    def __post_init__(self) -> None:
        if not (self.window > 0 and self.update_interval > 0 and self.rate > 0):
            raise ValueError("window, update_interval and rate must be positive")
        if self.burst < 1 or self.max_groups < 1 or self.max_rows < 1 or not self.max_age > 0:
            raise ValueError("burst, max_groups, max_rows and max_age must be positive")


@dataclass(frozen=True)
class Write:
    """Insert the row ``row_key``, or replace it: ``record.count`` is the total so far."""

    row_key: str
    record: RequestRecord


DROPPED_REASON = "refused requests not recorded one by one: the request log's write limit"
_DROPPED_FIX = (
    "many different failures at once (a scan or a flood); the rows before this one show "
    "examples, and the receiver answered each request as usual"
)


@dataclass(eq=False)
class _Group:
    row_key: str
    opened: float  # when its window began
    key: tuple[object, ...]
    latest: RequestRecord  # the newest request counted in
    first_seen: str
    last_seen: str
    count: int = 1
    written: int = 0  # the count last written
    written_at: float | None = None
    update_due: bool = False  # in the update queue

    @property
    def pending(self) -> bool:
        return self.count > self.written

    def add(self, record: RequestRecord, *, keep_latest: bool = False) -> None:
        if not keep_latest:
            self.latest = record
        self.last_seen = record.time
        self.count += 1

    def aggregate(self) -> RequestRecord:
        return replace(self.latest, count=self.count, first_seen=self.first_seen,
                       last_seen=self.last_seen, time=self.last_seen)  # fmt: skip


@dataclass
class _Bucket:
    rate: float
    burst: int
    tokens: float = 0.0
    at: float | None = None

    def refill(self, now: float) -> None:
        if self.at is None:
            self.tokens = float(self.burst)
        else:
            self.tokens = min(float(self.burst), self.tokens + (now - self.at) * self.rate)
        self.at = now

    def take(self) -> bool:
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


@dataclass
class Aggregator:
    """Turns refused requests into rate-limited, aggregated writes (see the module docstring)."""

    limits: Limits = field(default_factory=Limits)
    # Row keys must be unique across restarts and instances: a random prefix for each aggregator.
    instance: str = field(default_factory=lambda: secrets.token_hex(6))

    def __post_init__(self) -> None:
        self._bucket = _Bucket(self.limits.rate, self.limits.burst)
        self._groups: dict[tuple[object, ...], _Group] = {}
        self._by_opening: deque[_Group] = deque()  # open groups, oldest window first
        self._fresh: deque[_Group] = deque()  # never written yet
        self._closing: deque[_Group] = deque()  # window over, count not all written
        self._updates: deque[tuple[float, _Group]] = deque()  # (when due, group)
        self._dropped: _Group | None = None
        self._sequence = 0
        self._now = float("-inf")
        self.offered = 0

    # -- the public face --------------------------------------------------------------------

    def offer(self, record: RequestRecord, now: float) -> list[Write]:
        """Count ``record`` in; returns the writes due now (possibly none)."""
        now = self._advance(now)
        self.offered += 1
        key = record.identity
        group = self._groups.get(key)
        if group is not None and now < group.opened + self.limits.window:
            group.add(record)
            self._schedule_update(group, now)
        elif self.held < self.limits.max_groups:
            self._open(key, record, now)
        else:
            self._count_dropped(record, now)
        return self._drain(now)

    def flush(self, now: float) -> list[Write]:
        """The writes due by ``now`` without a new request: call it every second or so."""
        return self._drain(self._advance(now))

    def final(self) -> list[Write]:
        """Every count not yet written, regardless of the rate (once, at shutdown)."""
        groups = [*self._groups.values(), *self._closing]
        if self._dropped is not None:
            groups.append(self._dropped)
        writes = [self._write(group, self._now) for group in groups if group.pending]
        self._groups.clear()
        self._by_opening.clear()
        self._fresh.clear()
        self._closing.clear()
        self._updates.clear()
        self._dropped = None
        return writes

    @property
    def held(self) -> int:
        """Distinct failures in memory: open, or closed with a count still to write; a new one
        is let in only below ``max_groups`` (the one "N more" row comes on top)."""
        return len(self._groups) + len(self._closing)

    # -- inside ---------------------------------------------------------------------------

    def _advance(self, now: float) -> float:
        # A clock that steps back must not reopen windows or refill the bucket twice.
        self._now = max(self._now, now)
        self._bucket.refill(self._now)
        return self._now

    def _row_key(self) -> str:
        self._sequence += 1
        return f"{self.instance}-{self._sequence}"

    def _open(self, key: tuple[object, ...], record: RequestRecord, now: float) -> None:
        old = self._groups.pop(key, None)
        if old is not None:
            self._retire(old)
        group = _Group(self._row_key(), now, key, record, record.time, record.time)
        self._groups[key] = group
        self._by_opening.append(group)
        self._fresh.append(group)

    def _retire(self, group: _Group) -> None:
        """A group whose window is over: gone once its whole count is written."""
        if group.pending:
            self._closing.append(group)

    def _count_dropped(self, record: RequestRecord, now: float) -> None:
        dropped = self._dropped
        # A new "N more" row per window, but only once the last one is written: one at a time.
        if dropped is None or (now >= dropped.opened + self.limits.window and not dropped.pending):
            marker = _dropped_record(record.time)
            self._dropped = _Group(
                self._row_key(), now, ("dropped",), marker, record.time, record.time
            )
            self._fresh.append(self._dropped)
        else:
            dropped.add(record, keep_latest=True)  # counted; the marker stays the record
            self._schedule_update(dropped, now)

    def _schedule_update(self, group: _Group, now: float) -> None:
        if group.update_due or group.written == 0:
            return  # already queued, or still waiting for its first write
        group.update_due = True
        written_at = group.written_at if group.written_at is not None else now
        self._updates.append((max(now, written_at + self.limits.update_interval), group))

    def _close_windows(self, now: float) -> None:
        window = self.limits.window
        while self._by_opening and now >= self._by_opening[0].opened + window:
            group = self._by_opening.popleft()
            if self._groups.get(group.key) is group:
                del self._groups[group.key]
                self._retire(group)

    def _drain(self, now: float) -> list[Write]:
        self._close_windows(now)
        writes: list[Write] = []
        # New failures first (a person waits for them), then closing counts, then updates.
        # Entries already written are let go without a token, so no queue outgrows the groups.
        for queue in (self._fresh, self._closing):
            while queue:
                if queue[0].pending:
                    if not self._bucket.take():
                        break
                    writes.append(self._write(queue[0], now))
                queue.popleft()
        while self._updates and self._updates[0][0] <= now:
            group = self._updates[0][1]
            if group.pending:
                if not self._bucket.take():
                    break
                writes.append(self._write(group, now))
            group.update_due = False
            self._updates.popleft()
        return writes

    def _write(self, group: _Group, now: float) -> Write:
        group.written = group.count
        group.written_at = now
        return Write(group.row_key, group.aggregate())


def _dropped_record(time: str) -> RequestRecord:
    return RequestRecord(
        time=time,
        method=None,
        path=None,
        status=None,
        reason=DROPPED_REASON,
        fix=_DROPPED_FIX,
        duration_ms=None,
        client=None,
        tradecloud="unknown",
        kind="dropped",
    )


# ---- retention ---------------------------------------------------------------------------------


def oldest_kept(now: dt.datetime, limits: Limits) -> str:
    """The ISO time before which rows are deleted by age (compare with ``last_seen``)."""
    cutoff = now.astimezone(dt.UTC) - dt.timedelta(seconds=limits.max_age)
    return cutoff.strftime("%Y-%m-%dT%H:%M:%S.") + f"{cutoff.microsecond // 1000:03d}Z"


def to_delete(rows: Iterable[tuple[int, str]], now: dt.datetime, limits: Limits) -> list[int]:
    """The ids of the rows retention removes: older than ``max_age`` by their last-seen time
    (ISO UTC), and beyond the ``max_rows`` newest. ``rows``: (id, last_seen), any order."""
    cutoff = oldest_kept(now, limits)
    ordered = sorted(rows, key=lambda row: (row[1], row[0]), reverse=True)
    doomed = [row_id for index, (row_id, seen) in enumerate(ordered)
              if index >= limits.max_rows or seen < cutoff]  # fmt: skip
    return sorted(doomed)
