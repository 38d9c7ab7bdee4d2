"""Prometheus metrics: one registry per process, and collectors that read the store at scrape time.

Counters live in the process that counts; with ``serve --workers N`` they are kept in
prometheus_client's multiprocess files (``PROMETHEUS_MULTIPROC_DIR``) and summed at scrape time.
What the store knows (outbox depth, oldest unfinished task) is read from the store when scraped,
so it is right whatever instance did the work. Label values are fixed words, route templates and
sink names: never ids, order numbers or credentials.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tcwebhook import __version__
from tcwebhook.datadir import DIR_MODE
from tcwebhook.errors import StoreUnavailable

if TYPE_CHECKING:
    from tcwebhook.store import Store

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
_REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
_COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)

_active: Metrics | None = None


def active() -> Metrics | None:
    """This process's metrics, or None when metrics are off (callers then skip counting)."""
    return _active


def use_multiprocess(directory: Path) -> None:
    """Count in files under ``directory`` shared by forked workers; call before ``Metrics()``."""
    shutil.rmtree(directory, ignore_errors=True)  # counts of an earlier run are not ours
    directory.mkdir(parents=True, mode=DIR_MODE)
    os.environ[MULTIPROCESS_ENV] = str(directory)
    from prometheus_client import values

    # The value class is chosen when prometheus_client is imported; choose again.
    values.ValueClass = values.get_value_class()


def worker_stopped(pid: int) -> None:
    """Forget a stopped worker's live gauges (its counters stay in the sums)."""
    if os.environ.get(MULTIPROCESS_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


class Metrics:
    """The receiver's counters and histograms."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.multiprocess = bool(os.environ.get(MULTIPROCESS_ENV))
        # Multiprocess values are written to files and collected from there, not registered.
        self.registry = CollectorRegistry()
        registry = None if self.multiprocess else self.registry

        def counter(name: str, documentation: str, *labels: str) -> Any:
            return Counter(name, documentation, labels, registry=registry)

        def histogram(
            name: str, documentation: str, buckets: tuple[float, ...], *labels: str
        ) -> Any:
            return Histogram(name, documentation, labels, buckets=buckets, registry=registry)

        self.requests = counter(
            "tcwebhook_http_requests",
            "HTTP requests answered on the webhook port, by route template, method and status.",
            *("route", "method", "status"),
        )
        self.request_duration = histogram(
            "tcwebhook_http_request_duration_seconds",
            "Time from request to answer on the webhook port, by route template.",
            _REQUEST_BUCKETS,
            "route",
        )
        self.events = counter(
            "tcwebhook_events", "Webhook events by kind and outcome (stored, duplicate).",
            *("kind", "outcome"),
        )  # fmt: skip
        self.commit_duration = histogram(
            "tcwebhook_store_commit_duration_seconds",
            "Duration of one store commit (a group of events).",
            _COMMIT_BUCKETS,
        )
        self.commit_batch = histogram(
            "tcwebhook_store_commit_batch_size", "Events per store commit.", _BATCH_BUCKETS
        )
        self.auth_failures = counter(
            "tcwebhook_auth_failures", "Requests refused by authentication, by reason.", "reason"
        )
        self.deliveries = counter(
            "tcwebhook_deliveries",
            "Delivery attempts by sink and outcome (done, failed, dead).",
            *("sink", "outcome"),
        )
        self.api_calls = counter(
            "tcwebhook_tradecloud_api_calls", "Calls to the Tradecloud API by outcome.", "outcome"
        )

    def activate(self) -> Metrics:
        """Make these the process's metrics (``active()``)."""
        global _active
        _active = self
        return self

    def observe_commit(self, events: int, seconds: float) -> None:
        self.commit_batch.observe(events)
        self.commit_duration.observe(seconds)

    def delivery(self, sink: str, outcome: str) -> None:
        self.deliveries.labels(sink, outcome).inc()

    def api_call(self, status: int | None) -> None:
        if status is None:
            outcome = "unavailable"
        elif 200 <= status < 300:
            outcome = "ok"
        elif status in (401, 403, 404):
            outcome = str(status)
        else:
            outcome = "client_error" if status < 500 else "server_error"
        self.api_calls.labels(outcome).inc()


class _StoreCollector:
    """Outbox depth by sink and state, and the age of the oldest unfinished task, read at scrape."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily("tcwebhook_store_up", "1 when the store could be read.")
        try:
            status = self.store.status()
        except StoreUnavailable:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        depth = GaugeMetricFamily(
            "tcwebhook_outbox_tasks", "Outbox tasks by sink and state.", labels=["sink", "state"]
        )
        for sink, states in sorted(status["tasks"].items()):
            for state, count in sorted(states.items()):
                depth.add_metric([sink, state], count)
        yield depth
        events = GaugeMetricFamily(
            "tcwebhook_stored_events", "Events in the store by kind.", labels=["kind"]
        )
        for kind, count in sorted(status["events"].items()):
            events.add_metric([kind], count)
        yield events
        oldest = status["oldest_unfinished_received_at"]
        age = GaugeMetricFamily(
            "tcwebhook_outbox_oldest_unfinished_age_seconds",
            "Age of the event behind the oldest pending, running or failed task (0: none).",
        )
        age.add_metric([], _age(oldest) if oldest else 0.0)
        yield age


class _StaticCollector:
    """Build info and the server certificate's expiry (re-read at scrape: it follows SIGHUP)."""

    def __init__(self, certificate: Callable[[], Path | None]) -> None:
        self.certificate = certificate

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily

        yield InfoMetricFamily("tcwebhook_build", "tcwebhook version.", {"version": __version__})
        path = self.certificate()
        expires = _not_after(path) if path is not None else None
        if expires is not None:
            yield GaugeMetricFamily(
                "tcwebhook_server_certificate_expiry_timestamp_seconds",
                "When the served TLS certificate expires (Unix time).",
                value=expires,
            )


def _age(received_at: str) -> float:
    try:
        moment = datetime.fromisoformat(received_at.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return max(0.0, time.time() - moment.timestamp())


def _not_after(path: Path) -> float | None:
    from cryptography import x509

    try:
        certificate = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None
    return certificate.not_valid_after_utc.timestamp()


def scrape_registry(metrics: Metrics, store: Store, certificate: Callable[[], Path | None]) -> Any:
    """The registry a scrape reads: this process's (or every worker's) counts plus the store."""
    from prometheus_client import CollectorRegistry, multiprocess

    if metrics.multiprocess:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = metrics.registry
    registry.register(_StoreCollector(store))
    registry.register(_StaticCollector(certificate))
    return registry


def create_metrics_app(registry: Any) -> web.Application:
    """``GET /metrics`` in the Prometheus text format; nothing else on this listener."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    async def metrics(request: web.Request) -> web.Response:
        # Collectors read SQLite: off the event loop, so scrapes never stall webhooks.
        body = await asyncio.to_thread(generate_latest, registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application(client_max_size=1024)
    app.router.add_get("/metrics", metrics)
    return app


def counting_deliveries(
    metrics: Metrics, listener: Callable[..., None] | None
) -> Callable[..., None]:
    """A delivery listener that counts each outcome, then calls ``listener``."""

    def listen(policy: Any, task: Any, state: str, error: str | None) -> None:
        metrics.delivery(policy.name, state)
        if listener is not None:
            listener(policy, task, state, error)

    return listen
