"""Reconcile: poll Tradecloud for what changed, compare with the store, store what was missed.

A webhook can be missed without the receiver ever seeing a request (endpoint unreachable, the
integration switched off, an event name not enabled). Tradecloud's polling endpoints
(docs/tradecloud.md#api-polling) list every order or shipment updated after an instant; each one
whose change the store does not hold yet becomes a *recovered event* that is shown and delivered
like a received one. ``tcwebhook reconcile`` and the timer in ``serve`` both call ``reconcile``; it
prints nothing and returns a report.

One change is stored once. A change is identified by the object id and its ``lastUpdatedAt``
(``events.change_key``): a recovered event uses that key as its dedup key, a webhook carries it
beside its ``messageId``. So a rerun finds its own events, a webhook that came first makes the
poll see the change as known, and a late webhook for a change already recovered is answered as
a duplicate of the recovered event.

The rooms: ``sources`` (the endpoints), ``poll`` (paging and cursors), ``recovered`` (a polled
object → a recovered event; pure), ``report`` (the results), ``run`` (one run over the
endpoints) and ``timer`` (the lease and serve's timer).
"""

from tcwebhook.reconcile.poll import MAX_PAGES, format_instant
from tcwebhook.reconcile.recovered import MESSAGE_ID_NAMESPACE
from tcwebhook.reconcile.report import (
    EndpointResult,
    ProgressCallback,
    ReconcileReport,
    RecoveredChange,
)
from tcwebhook.reconcile.run import reconcile, reconcile_configured_store
from tcwebhook.reconcile.sources import (
    ORDERS,
    SHIPMENTS,
    SINGLE_DELIVERY_ORDERS,
    PollSource,
    poll_sources,
)
from tcwebhook.reconcile.timer import (
    LEASE_NAME,
    MIN_LEASE_SECONDS,
    ReportListener,
    lease_holder,
    reconcile_timer,
    run_leased,
)

__all__ = [
    "LEASE_NAME",
    "MAX_PAGES",
    "MESSAGE_ID_NAMESPACE",
    "MIN_LEASE_SECONDS",
    "ORDERS",
    "SHIPMENTS",
    "SINGLE_DELIVERY_ORDERS",
    "EndpointResult",
    "PollSource",
    "ProgressCallback",
    "ReconcileReport",
    "RecoveredChange",
    "ReportListener",
    "format_instant",
    "lease_holder",
    "poll_sources",
    "reconcile",
    "reconcile_configured_store",
    "reconcile_timer",
    "run_leased",
]
