"""The delivery worker: claims due tasks per sink, runs them, records the outcome.

Delivery is at least once: a task is marked done only after its sink succeeded, so a crash in
between repeats the delivery (sinks are idempotent), and never loses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable

from tcwebhook.backoff import exponential
from tcwebhook.config import RetrySettings, Settings
from tcwebhook.delivery.fetching import FetchSink
from tcwebhook.delivery.sinks import (
    BatchResult,
    BatchSink,
    DeliveryFailed,
    DeliveryInterrupted,
    Sink,
    TaskPolicy,
    make_sink,
)
from tcwebhook.store import Outcome, Store, StoredEvent, TaskRecord

log = logging.getLogger("tcwebhook.delivery")

IDLE_POLL = 0.2  # seconds between looks at the outbox when nothing woke us
LEASE_MARGIN = 30.0  # a claim lapses this long after the sink's timeouts
CLAIM_BATCH = 32  # tasks claimed (and recorded) per transaction
# For a sink that hands on a batch at once (the directory sink): its fixed cost (a directory
# fsync, a claim and a record transaction) is shared by more files; a crash between hand-off
# and bookkeeping delivers at most this many again (docs/sinks.md).
BATCH_SINK_CLAIM = 128
RECORD_RETRY_MAX = 5.0  # seconds between tries to record outcomes while the store fails
RECORD_TRIES_WHEN_STOPPING = 3  # then the claims are handed back (or left to the next start)


def next_delay(retry: RetrySettings, attempts: int) -> float:
    """Exponential back-off with full jitter in its upper half, capped at ``max_delay``."""
    return exponential(attempts, base=retry.base_delay, cap=retry.max_delay, jitter=0.5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    with contextlib.suppress(RuntimeError):  # the loop has closed: nobody to wake
        loop.call_soon_threadsafe(callback)


DeliveryListener = Callable[[TaskPolicy, TaskRecord, str, str | None], None]


class DeliveryWorker:
    """Delivers the outbox of every configured sink until stopped."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        listener: DeliveryListener | None = None,
    ) -> None:

        self.store = store
        self.sinks: list[Sink] = [FetchSink(settings, store)]
        self.sinks += [make_sink(sink) for sink in settings.sinks]
        self.listener = listener
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self.claimant = f"{socket.gethostname()}:{os.getpid()}"

    def wake(self) -> None:
        """New work was stored: look now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """Stop claiming; cut short deliveries that may take long (commands are killed, their
        tasks given back without counting an attempt)."""
        self._stopping.set()
        self._wake.set()
        for sink in self.sinks:
            sink.interrupt()

    async def run(self) -> None:
        """Deliver until ``stop``; in-flight deliveries finish first."""
        loop = asyncio.get_running_loop()
        # Other processes sharing the store announce their new tasks (PostgreSQL's NOTIFY).
        unwatch = self.store.watch(lambda: _call_soon(loop, self.wake))
        try:
            await asyncio.to_thread(self.release_orphans)
            await asyncio.gather(*(self._run_sink(sink) for sink in self.sinks))
        finally:
            unwatch()
            for sink in self.sinks:
                await sink.close()

    async def drain(self) -> int:
        """Deliver everything due now, then return how many attempts were made (for cron)."""
        attempts = 0
        try:
            await asyncio.to_thread(self.release_orphans)
            for sink in self.sinks:
                while batch := await self._claim(sink):
                    attempts += await self._process(sink, batch)
        finally:
            for sink in self.sinks:
                await sink.close()
        return attempts

    def release_orphans(self) -> int:
        """Tasks claimed by a worker on this host that no longer runs (killed, crashed) are
        due again now, rather than when their claim lapses."""
        host = socket.gethostname()
        released = 0
        for claimant in self.store.claimants():
            claimant_host, _, pid = claimant.rpartition(":")
            if claimant_host == host and pid.isdigit() and not _alive(int(pid)):
                released += self.store.release_claims(claimant)
        return released

    async def _run_sink(self, sink: Sink) -> None:
        while not self._stopping.is_set():
            try:
                batch = await self._claim(sink)
                if batch:
                    await self._process(sink, batch)
                    continue
            except Exception as exc:  # the store is busy for a moment: claims lapse, retry
                log.warning("delivery bookkeeping for %s failed: %s", sink.settings.name, exc)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), IDLE_POLL)

    async def _claim(self, sink: Sink) -> list[TaskRecord]:
        policy = sink.settings
        strict = policy.concurrency == 1
        if strict:
            limit = BATCH_SINK_CLAIM if isinstance(sink, BatchSink) else CLAIM_BATCH
        else:
            limit = max(policy.concurrency, CLAIM_BATCH)
        return await asyncio.to_thread(
            self.store.claim_tasks,
            policy.name,
            limit,
            policy.timeout * CLAIM_BATCH + LEASE_MARGIN,
            strict,
            self.claimant,
        )

    async def _process(self, sink: Sink, batch: list[TaskRecord]) -> int:
        """Attempt a claimed batch, then record every outcome in one transaction.

        The batch's events are read in one query. In order for ``concurrency: 1``, stopping at
        the first failure (the rest go back to the queue behind it), as one hand-off when the
        sink takes batches; otherwise ``concurrency`` at once.
        """
        policy = sink.settings
        outcomes: list[Outcome] = []
        released: list[int] = []
        try:
            found = await asyncio.to_thread(
                self.store.get_events, [task.event_id for task in batch]
            )
        except Exception as exc:  # the store fails for a moment: the claims go back unattempted
            log.warning("cannot read the events to deliver to %s: %s", policy.name, exc)
            found = None
        if found is None:
            released = [task.id for task in batch]
        elif policy.concurrency == 1:
            outcomes, released = await self._attempt_in_order(sink, batch, found)
        else:
            events = {event.id: event for event in found}
            limit = asyncio.Semaphore(policy.concurrency)

            async def bounded(task: TaskRecord) -> Outcome | None:
                async with limit:
                    return await self._attempt(sink, task, events.get(task.event_id))

            attempted = await asyncio.gather(*(bounded(task) for task in batch))
            outcomes = [outcome for outcome in attempted if outcome is not None]
            released = [t.id for t, o in zip(batch, attempted, strict=True) if o is None]
        if not await self._record(policy, outcomes, released):
            return len(outcomes)
        for outcome in outcomes:
            if self.listener is not None:
                self.listener(policy, outcome.task, outcome.state, outcome.error)
        return len(outcomes)

    async def _attempt_in_order(
        self, sink: Sink, batch: list[TaskRecord], found: list[StoredEvent]
    ) -> tuple[list[Outcome], list[int]]:
        """The outcomes of the leading tasks attempted, and the tasks given back: after a
        failure (or an interruption, whose task goes back too) nothing later is attempted."""
        events = {event.id: event for event in found}
        outcomes: list[Outcome] = []
        batches = isinstance(sink, BatchSink)  # else one event at a time
        index = 0
        while index < len(batch):
            # The run of tasks up to the first whose event is gone goes to the sink as one batch.
            run: list[StoredEvent] = []
            for task in batch[index:]:
                event = events.get(task.event_id)
                if event is None or (run and not batches):
                    break
                run.append(event)
            if not run:
                outcome = self._failed(sink, batch[index], _missing(batch[index]), None)
                return [*outcomes, outcome], [later.id for later in batch[index + 1 :]]
            result = await _deliver_run(sink, run)
            for task, output in zip(batch[index:], result.delivered, strict=False):
                outcomes.append(Outcome(task, "done", output=output))
            index += len(result.delivered)
            if isinstance(result.error, DeliveryInterrupted):  # this one and the rest go back
                return outcomes, [later.id for later in batch[index:]]
            if result.error is not None:
                failed = self._failed(sink, batch[index], str(result.error), result.error.output)
                return [*outcomes, failed], [later.id for later in batch[index + 1 :]]
        return outcomes, []

    async def _record(
        self, policy: TaskPolicy, outcomes: list[Outcome], released: list[int]
    ) -> bool:
        """Record the outcomes, retrying while the store fails (disk full, locked): the claims
        are this live process's to settle, not the lease's. When stopping gives up, the claims
        are handed back if the store lets us; otherwise the next start on this host does."""
        delay, tries = 0.2, 0
        while True:
            try:
                await asyncio.to_thread(self.store.finish_tasks, outcomes, released)
                return True
            except Exception as exc:
                tries += 1
                if self._stopping.is_set() and tries >= RECORD_TRIES_WHEN_STOPPING:
                    log.error(
                        "could not record %d delivery outcome(s) for %s (%s); "
                        "they will be delivered again",
                        len(outcomes),
                        policy.name,
                        exc,
                    )
                    with contextlib.suppress(Exception):
                        await asyncio.to_thread(self.store.release_claims, self.claimant)
                    return False
                log.warning(
                    "could not record %d delivery outcome(s) for %s (%s); retrying in %.1f s",
                    len(outcomes) + len(released),
                    policy.name,
                    exc,
                    delay,
                )
                await asyncio.sleep(0.2 if self._stopping.is_set() else delay)
                delay = min(delay * 2, RECORD_RETRY_MAX)

    async def _attempt(
        self, sink: Sink, task: TaskRecord, event: StoredEvent | None
    ) -> Outcome | None:
        """One delivery; None when it was interrupted by stopping (it does not count)."""
        if event is None:
            return self._failed(sink, task, _missing(task), None)
        result = await _deliver_one(sink, event)
        if isinstance(result.error, DeliveryInterrupted):
            return None
        if result.error is not None:
            return self._failed(sink, task, str(result.error), result.error.output)
        return Outcome(task, "done", output=result.delivered[0])

    def _failed(self, sink: Sink, task: TaskRecord, error: str, output: str | None) -> Outcome:
        """A failed attempt: due again after a back-off, or dead after the last one."""
        policy = sink.settings
        attempts = task.attempts + 1
        if attempts >= policy.retry.max_attempts:
            return Outcome(task, "dead", error, output)
        due = time.time() + next_delay(policy.retry, attempts)
        return Outcome(task, "failed", error, output, due)


async def _deliver_one(sink: Sink, event: StoredEvent) -> BatchResult:
    """One event through ``sink.deliver``, its failure as data."""
    return await _deliver_run(sink, [event])


async def _deliver_run(sink: Sink, events: list[StoredEvent]) -> BatchResult:
    """Events (one, unless the sink takes batches) handed to the sink, its failure as data."""
    try:
        if isinstance(sink, BatchSink):
            return await sink.deliver_batch(events)
        return BatchResult([await sink.deliver(events[0])])
    except (DeliveryInterrupted, DeliveryFailed) as exc:
        return BatchResult(error=exc)
    except Exception as exc:  # a bug or a surprise in a sink must not stop the others
        log.exception("delivery to %s crashed", sink.settings.name)
        return BatchResult(error=DeliveryFailed(f"unexpected error: {exc!r}"))


def _missing(task: TaskRecord) -> str:
    return f"event {task.event_id} is no longer stored"


async def run_worker(
    store: Store, settings: Settings, listener: DeliveryListener | None, once: bool
) -> int:
    """``tcwebhook deliver``: drain once, or deliver until SIGINT/SIGTERM."""
    import signal

    worker = DeliveryWorker(store, settings, listener)
    if once:
        return await worker.drain()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, worker.stop)
    await worker.run()
    return 0
