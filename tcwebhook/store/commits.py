"""Commits: the group-commit loop both backends write through, and what its commits tell
``/healthz``.

One writer thread per store takes every request waiting, has the backend store them in one
transaction (one fsync for the batch), then wakes each request. A request is answered only after
its own commit, so every 2xx still means "on disk", while many concurrent requests share the
cost of one commit. What differs per backend (connections, locks, the insert itself) is its
``BatchCommitter``.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from tcwebhook.errors import StoreUnavailable
from tcwebhook.store.records import AppendResult, NewEvent

# A failed commit counts as "cannot take events" for this long unless a later one succeeds; the
# write probe is repeated at most this often.
RECENT_FAILURE = 30.0
PROBE_EVERY = 2.0


class CommitHealth:
    """What a store's writer saw of its commits, and a cached write probe: ``problem()``."""

    def __init__(self) -> None:
        self._failure: tuple[float, str] | None = None  # (monotonic time, why)
        self._committed_at = -PROBE_EVERY  # monotonic time of the last successful commit
        self._probed: tuple[float, str | None] = (-PROBE_EVERY, None)

    def failed(self, why: str) -> None:
        self._failure = (time.monotonic(), why)

    def committed(self) -> None:
        self._failure = None
        self._committed_at = time.monotonic()

    def problem(
        self, probe: Callable[[], str | None], while_busy: Callable[[], str | None]
    ) -> str | None:
        """A commit that failed recently counts until a later one succeeds (the clients saw
        503s); while commits succeed, ``while_busy``; otherwise ``probe``, at most every
        ``PROBE_EVERY`` seconds."""
        now = time.monotonic()
        failure = self._failure
        if failure is not None and now - failure[0] < RECENT_FAILURE:
            return f"the last commit failed: {failure[1]}"
        if now - self._committed_at < PROBE_EVERY:  # busy and committing: no probe needed
            return while_busy()
        checked, found = self._probed
        if time.monotonic() - checked >= PROBE_EVERY:
            found = probe()
            self._probed = (time.monotonic(), found)
        return found


# ---------------------------------------------------------------------------------------------
# Group commit: the writer thread takes up to MAX_BATCH queued (event, future, loop) items per
# transaction and then settles their futures on their event loops.

MAX_BATCH = 512
_STOP = object()  # put on the queue by close(): finish what came before it, then end


class BatchCommitter(Protocol):
    """A backend's side of the group commit. Its methods run on the writer thread."""

    def commit(self, events: list[NewEvent]) -> list[AppendResult]:
        """Store ``events`` (with their tasks) in one transaction: one result per event, in
        order. Raises on failure; a ``StoreUnavailable`` reaches the requests as it is."""

    def finish(self) -> None:
        """The writer stops: release the connection and whatever runs beside it."""


class GroupCommitLoop:
    """Commits the queued events of many requests in one transaction per batch, on one thread.

    Producers put ``(event, future, loop)`` on ``queue``; each future is settled on its own
    loop once the batch holding it is committed (or failed: ``StoreUnavailable``).
    """

    def __init__(self, committer: BatchCommitter, health: CommitHealth) -> None:
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        # Called in the writer thread after each commit with (events, seconds): metrics.
        self.commit_observer: Callable[[int, float], None] | None = None
        self._committer = committer
        self._health = health
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the writer thread unless it runs already (any thread may ask)."""
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="tcwebhook-store-writer", daemon=True
                    )
                    self._thread.start()

    def close(self) -> None:
        """Let the writer finish what is queued, then stop it."""
        if self._thread is not None:
            self.queue.put(_STOP)
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        try:
            while True:
                batch, stop = self._take_batch()
                if batch:
                    self._commit(batch)
                if stop:
                    return
        finally:
            self._committer.finish()

    def _take_batch(self) -> tuple[list[Any], bool]:
        """What is queued (waiting for the first item), at most ``MAX_BATCH``, without the
        stop marker; and whether the marker was among it."""
        batch = [self.queue.get()]
        while len(batch) < MAX_BATCH:
            try:
                batch.append(self.queue.get_nowait())
            except queue.Empty:
                break
        stop = any(item is _STOP for item in batch)
        if stop:
            batch = [item for item in batch if item is not _STOP]
        return batch, stop

    def _commit(self, batch: list[Any]) -> None:
        started = time.perf_counter()
        try:
            results = self._committer.commit([event for event, _, _ in batch])
        except Exception as exc:  # every failure to store must reach the request as a 503
            self._health.failed(str(exc))
            error = (
                exc
                if isinstance(exc, StoreUnavailable)
                else StoreUnavailable(f"the event store could not commit: {exc}")
            )
            wake_all(batch, [error] * len(batch))
            return
        if self.commit_observer is not None:
            self.commit_observer(len(batch), time.perf_counter() - started)
        self._health.committed()
        wake_all(batch, results)


def wake_all(batch: list[Any], outcomes: Sequence[AppendResult | BaseException]) -> None:
    """Hand each request its outcome with one wake-up per event loop, not one per request:
    every ``call_soon_threadsafe`` writes to the loop's self-pipe and wakes it
    (docs/performance-notes.md#5-one-loop-wake-up-per-committed-batch)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[AppendResult], Any]]] = {}
    for (_, future, loop), outcome in zip(batch, outcomes, strict=True):
        by_loop.setdefault(loop, []).append((future, outcome))
    for loop, settled in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits for these
            loop.call_soon_threadsafe(_settle, settled)


def _settle(settled: list[tuple[asyncio.Future[AppendResult], Any]]) -> None:
    for future, outcome in settled:
        if future.done():  # the request went away (client disconnected); the row is stored
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
