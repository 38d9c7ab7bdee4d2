"""``tcwebhook requests``: every request the receiver answered, also the refused ones."""

from __future__ import annotations

from pathlib import Path

import typer

from tcwebhook.cli import requests_output
from tcwebhook.cli.common import STORE_SECTIONS, ConfigOption, DataDirOption, JsonOption, load

# The facts a fix may name (paths, authentication types) come from these sections as well.
_SECTIONS = (*STORE_SECTIONS, "server", "auth")


def register(app: typer.Typer) -> None:
    app.command("requests")(list_requests)


def list_requests(
    refused: bool = typer.Option(
        False, "--refused", help="Only requests that were not stored, and failed TLS handshakes."
    ),
    since: str | None = typer.Option(
        None,
        "--since",
        metavar="TIME",
        help="Only requests at or after this instant (ISO 8601 in UTC, e.g. 2026-11-01 or "
        "2026-11-01T12:00:00Z) or this long ago (90m, 12h, 7d).",
    ),
    limit: int = typer.Option(
        50, "--limit", "-n", min=1, max=500, help="Show at most this many requests."
    ),
    config: Path | None = ConfigOption,
    data_dir: Path | None = DataDirOption,
    json: bool = JsonOption,
) -> None:
    """Requests to the receiver, newest first: the stored ones, and the refused ones with the
    reason and the fix (a wrong token, a wrong path, a failed TLS handshake)."""
    from tcwebhook.cli.events import _timestamp
    from tcwebhook.requestlog import ReceiverFacts, stored_auth
    from tcwebhook.store import open_store
    from tcwebhook.store.requests import RequestQuery

    start = _timestamp(since, "--since") if since else None
    settings = load(config, sections=_SECTIONS, data_dir=data_dir)
    facts = ReceiverFacts.from_settings(settings)
    store = open_store(settings.store_url, read_only=True, create=False)
    try:
        query = RequestQuery(
            limit=limit,
            refused=refused,
            since=start,
            path_auth=lambda path: stored_auth(facts, path),
        )
        page = store.page_requests(query)
    finally:
        store.close()
    requests_output.render(page.records, json, tls_visible=settings.server.tls.enabled)
