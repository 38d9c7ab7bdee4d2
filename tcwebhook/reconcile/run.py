"""One reconcile run over the configured endpoints: cursors in, report out."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TYPE_CHECKING

from tcwebhook.delivery.routing import task_router
from tcwebhook.errors import (
    EXIT_CHECK_FAILED,
    ApiAccessDenied,
    ApiCredentialsError,
    ApiError,
    ConfigError,
    TcwebhookError,
)
from tcwebhook.reconcile.poll import format_instant, poll_endpoint
from tcwebhook.reconcile.recovered import Router
from tcwebhook.reconcile.report import EndpointResult, ProgressCallback, ReconcileReport
from tcwebhook.reconcile.sources import poll_sources
from tcwebhook.store import Store, open_store, utc_now
from tcwebhook.tradecloud import TradecloudClient

if TYPE_CHECKING:
    from tcwebhook.config import Settings
    from tcwebhook.tradecloud import TradecloudClient


async def reconcile(
    settings: Settings,
    store: Store,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    orders: bool | None = None,
    shipments: bool | None = None,
    dry_run: bool = False,
    client: TradecloudClient | None = None,
    progress: ProgressCallback | None = None,
    trigger: str = "cli",
) -> ReconcileReport:
    """Poll, compare and store recovered events; record the run (unless ``dry_run``).

    Without ``since`` each endpoint continues from its cursor; an endpoint without one is a
    ``ConfigError``. API failures after the client's retries end the run with ``error`` set:
    what was stored stays stored, and the cursor of an unfinished endpoint does not move.
    """

    orders = settings.reconcile.orders if orders is None else orders
    shipments = settings.reconcile.shipments if shipments is None else shipments
    sources = poll_sources(settings, orders, shipments)
    if not sources:
        raise ConfigError("nothing to reconcile: --no-orders and --no-shipments leave no endpoint")
    if since is not None and until is not None and until <= since:
        raise ConfigError("--until must be later than --since")
    starts = []
    for source in sources:
        cursor = await asyncio.to_thread(store.reconcile_cursor, source.endpoint)
        if since is None and cursor is None:
            raise ConfigError(
                f"reconcile has no cursor for {source.endpoint} yet: run it once with "
                "--since TIME (e.g. --since 2025-06-01T00:00:00Z); later runs continue from "
                "where Tradecloud's answer left off"
            )
        starts.append((source, format_instant(since) if since else cursor, cursor))
    report = ReconcileReport(utc_now(), dry_run, trigger)
    api = client or TradecloudClient.from_settings(settings)
    route = _task_router(settings)
    try:
        for source, start, cursor in starts:
            assert start is not None
            result = EndpointResult(
                source.endpoint,
                source.recovered_kind.value,
                start,
                cursor,
                format_instant(until) if until else None,
            )
            report.endpoints.append(result)
            await poll_endpoint(api, store, source, result, until, dry_run, route, progress)
    except TcwebhookError as exc:
        report.error = str(exc)
        # The API failing after its retries: the run could not complete (1). Credentials,
        # access, configuration or the store: the user has to fix something first (2).
        unfinished = isinstance(exc, ApiError) and not isinstance(
            exc, ApiCredentialsError | ApiAccessDenied
        )
        report.error_exit_code = EXIT_CHECK_FAILED if unfinished else exc.exit_code
    finally:
        if client is None:
            await api.close()
        report.finished_at = utc_now()
    if report.error is None and report.unusable:
        report.error = unusable_error(report)
    if not dry_run:
        await asyncio.to_thread(store.record_reconcile_run, report.to_json(include_events=False))
    return report


def unusable_error(report: ReconcileReport) -> str:
    """Objects that can never be stored fail the run (exit 1) once; the cursor moved past
    them, so they do not fail every run after it."""
    where = ", ".join(f"{r.unusable} on {r.endpoint}" for r in report.endpoints if r.unusable)
    return (
        f"Tradecloud sent {report.unusable} object(s) with no id or no readable lastUpdatedAt "
        f"({where}); they cannot be stored and were skipped, the rest of the run completed; "
        "if it happens again, tell Tradecloud"
    )


async def reconcile_configured_store(
    settings: Settings,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    orders: bool | None = None,
    shipments: bool | None = None,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
) -> ReconcileReport:
    """``reconcile`` on the configured store, opened for this run and closed after it."""

    store = open_store(settings.store_url)
    try:
        return await reconcile(
            settings,
            store,
            since=since,
            until=until,
            orders=orders,
            shipments=shipments,
            dry_run=dry_run,
            progress=progress,
        )
    finally:
        store.close()


def _task_router(settings: Settings) -> Router:

    return task_router(settings)
