"""The request log's writer: refused requests counted on the loop, written by a thread off it.

``offer`` runs on the receiver's loop and costs the aggregator's O(1): no I/O, no waiting. What
the aggregator lets through (bounded by its token bucket) is coalesced by row key and written by
one thread, every second and at stop; retention runs there too. A store that fails makes the
thread keep what it held, up to the aggregator's bound, until the store is back (logged once per
outage): recording never delays or fails an answer.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable

from tcwebhook.config import Settings
from tcwebhook.errors import StoreUnavailable
from tcwebhook.requestlog import Aggregator, Limits, RequestRecord, Write
from tcwebhook.store import Store

log = logging.getLogger("tcwebhook.requests")

FLUSH_EVERY = 1.0  # seconds between the thread's writes
TRIM_EVERY = 60.0  # seconds between retention runs


def limits_of(settings: Settings) -> Limits:
    """The aggregator's bounds from the ``requests`` section."""
    section = settings.requests
    return Limits(
        window=section.window,
        rate=section.rate,
        burst=section.burst,
        max_groups=section.max_groups,
        max_rows=section.keep,
        max_age=section.max_age_seconds,
    )


class RequestRecorder:
    """Takes records on the loop; a thread writes the aggregated rows to the store."""

    def __init__(
        self,
        store: Store,
        limits: Limits,
        *,
        clock: Callable[[], float] = time.monotonic,
        flush_every: float = FLUSH_EVERY,
    ) -> None:
        self._store = store
        self._limits = limits
        self._clock = clock
        self._flush_every = flush_every
        self._aggregator = Aggregator(limits)
        self._lock = threading.Lock()  # the aggregator: offered on the loop, flushed in the thread
        self._pending: dict[str, Write] = {}  # by row key: a newer count replaces an older one
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._failing = False
        self.rows_written = 0  # writes handed to the store (for tests and status)

    def offer(self, record: RequestRecord) -> None:
        """Count ``record`` in (on the loop: no I/O)."""
        with self._lock:
            writes = self._aggregator.offer(record, self._clock())
            for write in writes:
                self._pending[write.row_key] = write

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="tcwebhook-requests", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Write every count still held (regardless of the rate), then end the thread."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        last_trim = float("-inf")
        while not self._stopping:
            self._wake.wait(self._flush_every)
            self._wake.clear()
            with self._lock:
                for write in self._aggregator.flush(self._clock()):
                    self._pending[write.row_key] = write
            self._write()
            if self._clock() - last_trim >= TRIM_EVERY:
                last_trim = self._clock()
                self._trim()
        with self._lock:
            for write in self._aggregator.final():
                self._pending[write.row_key] = write
        self._write()

    def _write(self) -> None:
        with self._lock:
            writes, self._pending = list(self._pending.values()), {}
        if not writes:
            return
        try:
            self._store.record_requests(writes)
        except Exception as exc:  # never let the log's thread die: the receiver is unaffected
            self._outage(exc)
            self._keep(writes)
            return
        self.rows_written += len(writes)
        self._failing = False

    def _keep(self, writes: list[Write]) -> None:
        """Writes that failed wait for the store to come back, as many as the aggregator holds
        groups (a newer write of the same row wins); beyond that an outage costs rows."""
        with self._lock:
            for write in writes:
                if len(self._pending) >= self._limits.max_groups + 1:
                    break
                self._pending.setdefault(write.row_key, write)

    def _trim(self) -> None:
        try:
            self._store.trim_requests(self._limits, dt.datetime.now(dt.UTC))
        except Exception as exc:
            self._outage(exc)

    def _outage(self, exc: BaseException) -> None:
        if not self._failing:
            log.warning(
                "the request log could not be written (%s); refused requests are answered as "
                "usual but not recorded until the store is back",
                type(exc).__name__ if not isinstance(exc, StoreUnavailable) else exc,
            )
        self._failing = True
