"""The timer in ``serve``: a run per interval, among all instances sharing the store (a lease)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from tcwebhook.errors import TcwebhookError
from tcwebhook.reconcile.report import ReconcileReport
from tcwebhook.reconcile.run import reconcile
from tcwebhook.store import Store, utc_now

if TYPE_CHECKING:
    from tcwebhook.config import Settings

log = logging.getLogger("tcwebhook.reconcile")

LEASE_NAME = "reconcile"
MIN_LEASE_SECONDS = 600.0  # a run holds the lease at least this long (a crashed holder's lapses)

ReportListener = Callable[[ReconcileReport], None]


def lease_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def run_leased(
    settings: Settings, store: Store, interval: float, holder: str | None = None
) -> ReconcileReport | None:
    """One run if this process gets the lease (None when another instance has it).

    After the run the lease is kept until most of ``interval`` has passed, so that instances
    sharing the store run once per interval between them, not once each.
    """
    holder = holder or lease_holder()
    started = time.time()
    expires = started + max(interval, MIN_LEASE_SECONDS)
    if not await asyncio.to_thread(store.acquire_lease, LEASE_NAME, holder, expires):
        return None
    try:
        try:
            return await reconcile(settings, store, trigger="serve")
        except TcwebhookError as exc:  # no cursor yet, store trouble: a failed run, not a crash
            report = ReconcileReport(utc_now(), False, "serve", error=str(exc))
            report.finished_at = report.started_at
            await asyncio.to_thread(store.record_reconcile_run, report.to_json(False))
            return report
    finally:
        keep_until = started + interval * 0.9
        await asyncio.to_thread(store.release_lease, LEASE_NAME, holder, keep_until)


async def reconcile_timer(
    settings: Settings,
    store: Store,
    stopping: asyncio.Event,
    listener: ReportListener | None = None,
    on_stored: Callable[[], None] | None = None,
    interval: float | None = None,
) -> None:
    """Reconcile now and then every ``interval`` seconds (``reconcile.every``) until stopped."""
    interval = interval or settings.reconcile.interval_seconds
    if interval is None:
        return
    while not stopping.is_set():
        try:
            report = await run_leased(settings, store, interval)
        except Exception:  # a bug must not stop serve; the next interval tries again
            log.exception("reconcile failed unexpectedly")
            report = None
        if report is not None:
            if report.recovered and on_stored is not None:
                on_stored()
            if listener is not None:
                listener(report)
        try:
            await asyncio.wait_for(stopping.wait(), timeout=interval)
        except TimeoutError:
            continue
