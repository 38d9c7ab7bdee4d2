"""The Store interface every backend implements, and what is common to their URLs.

The receiver, the delivery worker and the commands only use these methods; everything that
differs between SQLite and PostgreSQL stays inside the backend's module.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

from tcwebhook.store.records import AppendResult, NewEvent, Outcome, StoredEvent, TaskRecord


class Store(abc.ABC):
    """A durable event store with an outbox of tasks (deliveries and API fetches).

    ``append`` is called on the event loop; every other method blocks and may be called from
    any thread (the worker runs them with ``asyncio.to_thread``).
    """

    # --- writing events -------------------------------------------------------------------

    @abc.abstractmethod
    def append(self, event: NewEvent) -> asyncio.Future[AppendResult]:
        """Store one event and its tasks; the future is done once they are committed."""

    @abc.abstractmethod
    def append_sync(self, event: NewEvent) -> AppendResult:
        """Blocking ``append`` in its own transaction (tools and tests)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Finish what is queued, then release connections and threads."""

    def coordinate_writers(self) -> None:  # noqa: B027 - a hook, empty unless a backend needs it
        """Several processes of one ``serve --workers`` write this store from now on."""

    def watch(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``wake`` (from any thread) when another process stores new tasks.

        Returns a function that stops watching. Backends that cannot notify return at once:
        the worker's poll finds the work.
        """
        return lambda: None

    # --- the outbox -----------------------------------------------------------------------

    @abc.abstractmethod
    def claim_tasks(
        self, target: str, limit: int, lease_seconds: float, strict_order: bool, claimant: str
    ) -> list[TaskRecord]:
        """Mark up to ``limit`` due tasks of ``target`` as running, for ``lease_seconds``;
        with ``strict_order`` only the leading run of due tasks, none while one runs."""

    @abc.abstractmethod
    def claimants(self) -> list[str]:
        """Who holds running tasks right now (``host:pid``)."""

    @abc.abstractmethod
    def release_claims(self, claimant: str) -> int:
        """Make the running tasks of a worker that died due again at once."""

    @abc.abstractmethod
    def finish_tasks(self, outcomes: Sequence[Outcome], released: Sequence[int] = ()) -> None:
        """Record attempts and give back claimed tasks not attempted, in one transaction."""

    @abc.abstractmethod
    def attach_fetched(self, event_id: int, fetched: bytes, changed_lines: list[str]) -> None:
        """Attach the object fetched for a GET notification, with its changed lines."""

    @abc.abstractmethod
    def previous_fetched(self, resource_id: str, before_event_id: int) -> bytes | None:
        """The newest object fetched for ``resource_id`` by an earlier event."""

    @abc.abstractmethod
    def requeue_tasks(
        self, event_id: int | None = None, target: str | None = None, dead_only: bool = False
    ) -> int:
        """Make tasks due now with a fresh attempt count."""

    # --- reading --------------------------------------------------------------------------

    @abc.abstractmethod
    def status(self) -> dict[str, Any]:
        """Counts per kind and per task state, and the oldest unfinished task's event time."""

    @abc.abstractmethod
    def purge(self, before: str, force: bool = False) -> int:
        """Delete events received before ``before`` whose tasks are all done (any, with force)."""

    @abc.abstractmethod
    def iter_events(self, since: str | None = None, batch: int = 500) -> Iterator[StoredEvent]:
        """Every event received at or after ``since``, oldest first."""

    @abc.abstractmethod
    def count(self) -> int:
        """How many events are stored."""

    @abc.abstractmethod
    def list_events(
        self,
        limit: int = 50,
        kind: str | None = None,
        event_name: str | None = None,
        task_state: str | None = None,
    ) -> list[StoredEvent]:
        """Newest first. ``event_name`` may be a glob (``Order*``)."""

    @abc.abstractmethod
    def get_event(self, event_id: int) -> StoredEvent:
        """One event with its tasks; ``NotFound`` if there is none with this id."""


POSTGRES_SCHEMES = ("postgresql", "postgres")


def display_url(url: str) -> str:
    """``url`` safe to show: the password (in the user part or the query) replaced by ***."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            user, _, host = netloc.rpartition("@")
            if ":" in user:
                user = user.split(":", 1)[0] + ":***"
            netloc = f"{user}@{host}"
        query = "&".join(
            "password=***" if pair.lower().startswith("password=") else pair
            for pair in parts.query.split("&")
            if pair
        )
        return urlunsplit(SplitResult(parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "(an unreadable URL)"
