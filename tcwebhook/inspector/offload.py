"""The inspector's heavy pages, built in a worker process so that the receiver's loop stays free.

The inspector shares the receiver's event loop (``serve``), and a Python process runs one
thread at a time: parsing, comparing and rendering a 10 MB order, even in a thread, held
webhook answers for seconds. Here a small pool of worker processes, at a lower CPU priority,
builds those pages whole: it reads the events from the store itself (read-only, so nothing
large crosses between the processes: pickling 90 MB of bodies alone took half a second) and
sends back the finished HTML, whose size ``pages`` bounds. At most ``MAX_WAITING`` pages wait
for the pool at once; one more is answered 503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from aiohttp import web

from tcwebhook.errors import StoreUnavailable
from tcwebhook.store import Store, open_store

WORKERS = 1  # one core for pages at most: the receiver keeps the other
MAX_WAITING = 8  # pages being built or queued; a person clicks, a script is refused
NICENESS = 10  # below the receiver, should the machine be busy

Result = TypeVar("Result")


class PagePool:
    """Pages built from the store at ``store_url`` by the process's worker pool (started on
    first use, shared by every inspector app of the process, stopped at exit)."""

    def __init__(self, store_url: str) -> None:
        self.store_url = store_url
        self.waiting = 0
        self.warmed = False

    def warm(self) -> None:
        """Start the worker and load what pages need, so the first page waits for neither (the
        worker reads its store only when asked for a page). Once per pool."""
        if self.warmed:
            return
        with contextlib.suppress(OSError):  # no process to spare now: the first page tries again
            _pool().submit(_warm_worker)
            self.warmed = True

    async def run(self, build: Callable[..., Result], *args: Any) -> Result:
        """``build(store, *args)`` in a worker, with the worker's read-only store."""
        if self.waiting >= MAX_WAITING:
            raise web.HTTPServiceUnavailable(
                text="the inspector is building other pages; try again in a moment",
                headers={"Retry-After": "2"},
            )
        self.waiting += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(_pool(), _in_worker, self.store_url, build, *args)
        except BrokenProcessPool:
            # A worker died (killed, out of memory): the next page starts a fresh pool.
            _forget_pool()
            raise web.HTTPServiceUnavailable(
                text="the inspector's page worker stopped; try again",
                headers={"Retry-After": "1"},
            ) from None
        finally:
            self.waiting -= 1


_executor: ProcessPoolExecutor | None = None


def _pool() -> ProcessPoolExecutor:
    global _executor
    if _executor is None:
        # spawn, not fork: the receiver has threads (the store's writer), and a forked copy of
        # a lock held by one of them never unlocks.
        _executor = ProcessPoolExecutor(
            WORKERS, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker
        )
    return _executor


def _forget_pool() -> None:
    global _executor
    executor, _executor = _executor, None
    if executor is not None:
        executor.shutdown(wait=False, cancel_futures=True)


# ------------------------------------------------------------------------------------------
# In the worker process

_stores: dict[str, Store] = {}


def _start_worker() -> None:
    # Ctrl-C in serve's terminal reaches the whole process group: serve stops the pool itself
    # (a traceback per worker is all SIGINT would give here).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(NICENESS)


def _warm_worker() -> None:
    from tcwebhook.inspector import pages, render

    for template in pages.TEMPLATES:
        render.environment().get_template(template)


def _in_worker(store_url: str, build: Callable[..., Result], *args: Any) -> Result:
    store = _stores.get(store_url)
    if store is None:
        store = _stores[store_url] = open_store(store_url, read_only=True)
    try:
        return build(store, *args)
    except StoreUnavailable:
        # Opened afresh for the next page: the database may have been moved or restored.
        del _stores[store_url]
        with contextlib.suppress(Exception):
            store.close()
        raise
