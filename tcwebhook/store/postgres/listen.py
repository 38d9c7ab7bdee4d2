"""Waking the delivery workers of every process: ``NOTIFY`` when tasks are stored or requeued,
one ``LISTEN``ing thread per process that calls the local workers' wake-ups."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

import psycopg

CHANNEL = "tcwebhook_tasks"
NOTIFY = "SELECT pg_notify(%s, '')"  # with (CHANNEL,); delivered at commit
NOTIFY_WAIT = 0.5  # seconds the listener waits for a notification before checking for stop


class TaskListener:
    """One thread per process that LISTENs for new tasks and wakes the local workers."""

    def __init__(self, info: str) -> None:
        self._conninfo = info
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tcwebhook-listen", daemon=True)
        self._thread.start()

    def add(self, wake: Callable[[], None]) -> Callable[[], None]:
        with self._lock:
            self._callbacks.append(wake)

        def remove() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._callbacks.remove(wake)

        return remove

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def _fire(self) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
        for wake in callbacks:
            wake()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self._fire()  # anything stored while we were not listening
                    while not self._stopping.is_set():
                        for _ in connection.notifies(timeout=NOTIFY_WAIT, stop_after=1):
                            self._fire()
            except psycopg.Error:
                # The server is away: the workers' poll is the backstop; try again shortly.
                self._stopping.wait(1.0)
