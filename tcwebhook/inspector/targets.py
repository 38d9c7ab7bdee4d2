"""Where "this serve" is, and the curl command that re-sends an event to it."""

from __future__ import annotations

import shlex

from tcwebhook.config import Settings
from tcwebhook.datadir import DEV_CA_FILE
from tcwebhook.local import curl_authorization, local_target
from tcwebhook.protocol import EventKind
from tcwebhook.store import StoredEvent


def receiver_urls(settings: Settings) -> dict[str, str]:
    """The local receiver's URL for each event kind (every kind: a recovered event's body is
    shaped like the webhook of its resource, so it is sent where that webhook goes)."""
    target = local_target(settings)
    return {
        kind.value: target.shipment_url if kind.resource == "shipment" else target.order_url
        for kind in EventKind
    }


def receiver_url(settings: Settings, kind: str) -> str:
    """Where an event of ``kind`` is sent again; a kind this version does not know (a newer
    tcwebhook wrote the store) goes to the order URL."""
    urls = receiver_urls(settings)
    return urls.get(kind, urls[EventKind.ORDER.value])


def curl_command(settings: Settings, event: StoredEvent, inspector_base: str) -> str:
    """A command that sends the stored bytes again; it names the token file, never the token.

    ``inspector_base``: ``scheme://host`` of the inspector, where the raw body is downloaded.
    """
    url = receiver_url(settings, event.kind)
    cacert = ""
    if settings.server.tls.cert is None:
        cacert = f"--cacert {shlex.quote(str(settings.data_dir / DEV_CA_FILE))} "

    def send(data: str) -> str:
        # Not str.format: the authorization may hold a shell ${VAR:?...} with braces.
        return (
            f"curl {cacert}{curl_authorization(settings)} -H 'Content-Type: application/json' "
            f"--data-binary @{data} {shlex.quote(url)}"
        )

    if settings.inspector.username:  # the raw download needs a login: save it first
        return send(f"event-{event.id}.json")
    raw = f"{inspector_base}/events/{event.id}/raw"
    return f"curl -s {shlex.quote(raw)} | " + send("-")
