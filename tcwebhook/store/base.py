"""The Store interface every backend implements, and what is common to their URLs.

The receiver, the delivery worker and the commands only use these methods; everything that
differs between SQLite and PostgreSQL stays inside the backend's module.
"""

from __future__ import annotations

import abc
import asyncio
import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

from tcwebhook.requestlog import Limits, Write
from tcwebhook.store.records import (
    AppendResult,
    EventQuery,
    KnownObject,
    NewEvent,
    Outcome,
    StoredEvent,
    TaskRecord,
)
from tcwebhook.store.requests import RequestPage, RequestQuery


class Store(abc.ABC):
    """A durable event store with an outbox of tasks (deliveries and API fetches).

    ``append`` is called on the event loop; every other method blocks and may be called from
    any thread (the worker runs them with ``asyncio.to_thread``).

    A backend is opened with ``read_only`` (never create, migrate or write) and ``create``
    (False: a store that is not there yet is a ``StoreUnavailable``, not a new empty one).
    """

    # Called by the writer after each commit with (events, seconds): metrics.
    commit_observer: Callable[[int, float], None] | None = None

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

    # --- health -------------------------------------------------------------------------

    @abc.abstractmethod
    def problem(self) -> str | None:
        """Why the store cannot take events now, or None (for /healthz; blocking, cached)."""

    @abc.abstractmethod
    def probe_write(self) -> str | None:
        """A cheap, short write check that stores nothing; why it failed, or None."""

    # --- the outbox -----------------------------------------------------------------------

    @abc.abstractmethod
    def claim_tasks(
        self, target: str, limit: int, lease_seconds: float, strict_order: bool, claimant: str
    ) -> list[TaskRecord]:
        """Mark up to ``limit`` due tasks of ``target`` as running, for ``lease_seconds``;
        with ``strict_order`` only the leading run of due tasks, none while one runs."""

    @abc.abstractmethod
    def targets(self) -> list[str]:
        """Every target (sink name or ``@fetch``) that has deliveries, sorted."""

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
    def get_events(self, event_ids: Sequence[int]) -> list[StoredEvent]:
        """These events with their tasks, in id order, in one round trip per few hundred; an
        id with no event (purged meanwhile) is left out (the worker reads a claimed batch)."""

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
        """Counts per kind and task state, the oldest unfinished task's event time, and per
        target its oldest unfinished task (``oldest_unfinished``)."""

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

    # --- browsing (the inspector): keyset paging, each query served by an index ------------

    @abc.abstractmethod
    def latest_event_id(self) -> int:
        """The id of the newest event (0 when none): cheap enough to poll for live views."""

    @abc.abstractmethod
    def event_tasks(self, event_ids: Sequence[int]) -> dict[int, list[TaskRecord]]:
        """The tasks of each of these events (at most ``MAX_EVENT_TASKS`` ids), by event id,
        in id order: cheap enough to poll the delivery state of the rows a live view shows."""

    @abc.abstractmethod
    def page_events(self, query: EventQuery) -> list[StoredEvent]:
        """One page of events matching ``query``, newest first."""

    @abc.abstractmethod
    def resource_events(self, resource_id: str, limit: int = 500) -> list[StoredEvent]:
        """The events of one order or shipment (by Tradecloud id), oldest first."""

    @abc.abstractmethod
    def previous_event(self, resource_id: str, before_event_id: int) -> StoredEvent | None:
        """The newest event of the same order or shipment received before this one."""

    # --- the request log (store/requests.py): refused requests beside the stored events ---

    @abc.abstractmethod
    def record_requests(self, writes: Sequence[Write]) -> None:
        """Insert or replace the aggregated rows of refused requests (by row key), at once."""

    @abc.abstractmethod
    def trim_requests(self, limits: Limits, now: dt.datetime) -> int:
        """Delete request rows beyond ``limits``' age and count; how many went."""

    @abc.abstractmethod
    def page_requests(self, query: RequestQuery) -> RequestPage:
        """One page of requests, newest first: request rows and stored events as requests."""

    @abc.abstractmethod
    def latest_request(self) -> tuple[int, int]:
        """(newest request row's id, rows): cheap enough to poll for live views."""

    # --- reconcile ------------------------------------------------------------------------

    @abc.abstractmethod
    def known_objects(
        self, change_kinds: Sequence[str], fetch_kind: str, resource_ids: Sequence[str]
    ) -> dict[str, KnownObject]:
        """Per id: its newest change of ``change_kinds`` and newest fetch of ``fetch_kind``."""

    @abc.abstractmethod
    def append_recovered(self, events: Sequence[NewEvent]) -> list[AppendResult]:
        """Store recovered events in one transaction; an already stored change is a duplicate."""

    @abc.abstractmethod
    def reconcile_cursor(self, endpoint: str) -> str | None:
        """The lastUpdatedAt Tradecloud returned for ``endpoint``, exactly as received."""

    @abc.abstractmethod
    def set_reconcile_cursor(self, endpoint: str, last_updated_at: str) -> None:
        """Remember ``last_updated_at`` as the next poll's start for ``endpoint``."""

    @abc.abstractmethod
    def record_reconcile_run(self, result: dict[str, Any], keep: int = 100) -> None:
        """Keep a run's result (JSON); only the newest ``keep`` runs are kept."""

    @abc.abstractmethod
    def last_reconcile_run(self) -> dict[str, Any] | None:
        """The newest run's result, or None."""

    @abc.abstractmethod
    def acquire_lease(self, name: str, holder: str, expires_at: float) -> bool:
        """Take lease ``name`` until ``expires_at`` (unix time) if free, lapsed or ours."""

    @abc.abstractmethod
    def release_lease(self, name: str, holder: str, keep_until: float | None = None) -> None:
        """Give the lease back, or keep it until ``keep_until`` so others wait till then."""


POSTGRES_SCHEMES = ("postgresql", "postgres")


def _hide_password(pair: str) -> str:
    # password= and sslpassword= (the client key's passphrase), whatever their case.
    name, equals, _ = pair.partition("=")
    return f"{name}=***" if equals and name.lower().endswith("password") else pair


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
        query = "&".join(_hide_password(pair) for pair in parts.query.split("&") if pair)
        if netloc == parts.netloc and query == parts.query:
            return url  # nothing to hide; urlunsplit would drop a slash of sqlite:////abs/path
        return urlunsplit(SplitResult(parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "(an unreadable URL)"
