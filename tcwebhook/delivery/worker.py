"""The delivery worker: claims due tasks per sink, runs them, records the outcome.

Delivery is at least once: a task is marked done only after its sink succeeded, so a crash in
between repeats the delivery (sinks are idempotent), and never loses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable

from tcwebhook.config import RetrySettings, SinkSettings
from tcwebhook.delivery.sinks import DeliveryFailed, Sink, make_sink
from tcwebhook.store import SqliteStore, TaskRecord

log = logging.getLogger("tcwebhook.delivery")

IDLE_POLL = 0.5  # seconds between looks at the outbox when nothing woke us
LEASE_MARGIN = 30.0  # a claim lapses this long after the sink's timeout


def next_delay(retry: RetrySettings, attempts: int) -> float:
    """Exponential back-off with full jitter in its upper half, capped at ``max_delay``."""
    delay = min(retry.max_delay, retry.base_delay * 2 ** max(attempts - 1, 0))
    return delay * random.uniform(0.5, 1.0)


DeliveryListener = Callable[[SinkSettings, TaskRecord, str, str | None], None]


class DeliveryWorker:
    """Delivers the outbox of every configured sink until stopped."""

    def __init__(
        self,
        store: SqliteStore,
        sinks: tuple[SinkSettings, ...],
        listener: DeliveryListener | None = None,
    ) -> None:
        self.store = store
        self.sinks = [make_sink(settings) for settings in sinks]
        self.listener = listener
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    def wake(self) -> None:
        """New work was stored: look now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Deliver until ``stop``; in-flight deliveries finish first."""
        try:
            await asyncio.gather(*(self._run_sink(sink) for sink in self.sinks))
        finally:
            for sink in self.sinks:
                await sink.close()

    async def drain(self) -> int:
        """Deliver everything due now, then return how many attempts were made (for cron)."""
        attempts = 0
        try:
            for sink in self.sinks:
                while batch := await self._claim(sink):
                    await asyncio.gather(*(self._attempt(sink, task) for task in batch))
                    attempts += len(batch)
        finally:
            for sink in self.sinks:
                await sink.close()
        return attempts

    async def _run_sink(self, sink: Sink) -> None:
        while not self._stopping.is_set():
            try:
                batch = await self._claim(sink)
            except Exception as exc:  # the store is busy or gone for a moment: try again later
                log.warning("cannot claim deliveries for %s: %s", sink.settings.name, exc)
                batch = []
            if batch:
                outcomes = await asyncio.gather(
                    *(self._attempt(sink, task) for task in batch), return_exceptions=True
                )
                for outcome in outcomes:
                    if isinstance(outcome, Exception):  # recording failed: the claim lapses,
                        log.warning("delivery bookkeeping failed: %s", outcome)  # then retries
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), IDLE_POLL)

    async def _claim(self, sink: Sink) -> list[TaskRecord]:
        settings = sink.settings
        return await asyncio.to_thread(
            self.store.claim_tasks,
            settings.name,
            settings.concurrency,
            settings.timeout + LEASE_MARGIN,
            settings.concurrency == 1,
        )

    async def _attempt(self, sink: Sink, task: TaskRecord) -> None:
        settings = sink.settings
        try:
            event = await asyncio.to_thread(self.store.get_event, task.event_id)
            output = await sink.deliver(event)
        except DeliveryFailed as exc:
            await self._failed(settings, task, str(exc), exc.output)
            return
        except Exception as exc:  # a bug or a surprise in a sink must not stop the others
            log.exception("delivery to %s crashed", settings.name)
            await self._failed(settings, task, f"unexpected error: {exc!r}", None)
            return
        await asyncio.to_thread(self.store.finish_task, task.id, "done", output=output)
        self._notify(settings, task, "done", None)

    async def _failed(
        self, settings: SinkSettings, task: TaskRecord, error: str, output: str | None
    ) -> None:
        attempts = task.attempts + 1
        if attempts >= settings.retry.max_attempts:
            state, due = "dead", 0.0
        else:
            state, due = "failed", time.time() + next_delay(settings.retry, attempts)
        await asyncio.to_thread(
            self.store.finish_task, task.id, state, error=error, output=output, next_attempt_at=due
        )
        self._notify(settings, task, state, error)

    def _notify(
        self, settings: SinkSettings, task: TaskRecord, state: str, error: str | None
    ) -> None:
        if self.listener is not None:
            self.listener(settings, task, state, error)
