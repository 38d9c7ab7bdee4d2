"""One stored event as the request that came and the answer the receiver gave. Pure: no I/O.

The stored row is the request's record (docs/requests.md): its method, path and headers, never
a credential. The answer is not stored: every stored event was answered the same way, 200 and
``{"status":"stored","id":N}``, right after its commit, so it is rebuilt here; how long the
answer took is not kept for a stored event.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from tcwebhook.config import AuthSettings, Settings
from tcwebhook.protocol import EventKind
from tcwebhook.requestlog import AuthPresence
from tcwebhook.store import StoredEvent

# A reconciled event: no request came, it was read from the Tradecloud API (reconcile/poll.py).
POLLED = "POLL"
NOT_RECORDED = "not recorded for a stored event (its row is the record)"


@dataclass(frozen=True)
class Exchange:
    """What the page's "Request" and "Answer" panels show."""

    request_line: str | None  # "POST /webhook/order"; None: no request (recovered by reconcile)
    headers: list[tuple[str, str]]
    authorization: AuthPresence | str  # "present (Bearer)", or why it is not known
    status: int | None
    answer: str | None  # the answer's body
    content_type: str | None
    duration: str


def exchange(event: StoredEvent, settings: Settings) -> Exchange:
    headers = [(str(name), str(value)) for name, value in event.headers.items()]
    if event.method == POLLED:
        return Exchange(None, headers, "no request", None, None, None, "-")
    answer = orjson.dumps({"status": "stored", "id": event.id}).decode()
    return Exchange(
        request_line=f"{event.method} {event.path}",
        headers=headers,
        authorization=authorization(event, settings),
        status=200,
        answer=answer,
        content_type="application/json",
        duration=NOT_RECORDED,
    )


def authorization(event: StoredEvent, settings: Settings) -> AuthPresence | str:
    """The scheme the event's path demanded: the receiver stores an event only after checking
    it, and never stores the header. Unknown when the path is not one this configuration serves
    (the store was filled by a serve configured otherwise)."""
    paths = settings.server.paths
    path = event.path.split("?", 1)[0]
    shipment = _resource(event.kind) == "shipment"
    served = paths.shipment if shipment else paths.order
    if path != served and not path.startswith(served.rstrip("/") + "/"):
        return "present (checked; its scheme is unknown: not a path this configuration serves)"
    auth: AuthSettings = (paths.shipment_auth if shipment else paths.order_auth) or settings.auth
    return "present (Basic)" if auth.type == "basic" else "present (Bearer)"


def _resource(kind: str) -> str:
    try:
        return EventKind(kind).resource
    except ValueError:  # a kind a newer tcwebhook wrote
        return "shipment" if "shipment" in kind else "order"
