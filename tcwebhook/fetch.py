"""Fetch an order or shipment from Tradecloud and pick the lines worth showing.

The functions here return data; ``tcwebhook.cli.fetch_output`` renders it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tcwebhook.changes import (
    SelectedLine,
    filter_lines,
    find_documents,
    order_reference,
    select_lines,
    shipment_reference,
)
from tcwebhook.tradecloud import TradecloudClient

if TYPE_CHECKING:
    from tcwebhook.config import Settings
    from tcwebhook.tradecloud import Fetched, LogoutResult, ObjectKind


@dataclass(frozen=True)
class DocumentDownload:
    """One document reference of an order and where it went (``path`` None: nothing to fetch)."""

    code: str | None
    name: str | None
    path: Path | None


@dataclass(frozen=True)
class FetchReport:
    """A fetched object, the lines selected from it and any documents downloaded."""

    fetched: Fetched
    selection: list[SelectedLine]
    mode: Literal["latest", "since", "all"]
    since: datetime | None
    downloads: list[DocumentDownload] = field(default_factory=list)

    @property
    def kind(self) -> ObjectKind:
        return self.fetched.kind

    @property
    def object(self) -> dict[str, Any]:
        return self.fetched.data

    @property
    def reference(self) -> datetime | None:
        """The instant "latest" compares against (header or ``meta.lastUpdatedAt``)."""
        if self.kind == "order":
            return order_reference(self.object)
        return shipment_reference(self.object)

    @property
    def line_count(self) -> int:
        if self.kind == "order":
            return len(_list(self.object.get("lines")))
        carriers = _list(self.object.get("loadCarriers"))
        inside = sum(len(_list(c.get("lines"))) for c in carriers if isinstance(c, Mapping))
        return inside + len(_list(self.object.get("lines")))

    def filtered(self) -> dict[str, Any]:
        """The object as the API sent it, with its lines cut to the selection."""
        return filter_lines(self.kind, self.object, self.selection)


async def fetch_object(
    settings: Settings,
    kind: ObjectKind,
    object_id: str,
    since: datetime | None = None,
    all_lines: bool = False,
    documents_dir: Path | None = None,
) -> FetchReport:
    """Fetch an order or shipment, select its lines and optionally download its documents."""

    async with TradecloudClient.from_settings(settings) as api:
        fetched = await api.fetch(kind, object_id)
        downloads = []
        if documents_dir is not None:
            documents_dir.mkdir(parents=True, exist_ok=True)
            for document in find_documents(fetched.data):
                path = await api.download_reference(document, documents_dir)
                downloads.append(
                    DocumentDownload(_text(document.get("code")), _text(document.get("name")), path)
                )
    mode: Literal["latest", "since", "all"] = (
        "all" if all_lines else "since" if since is not None else "latest"
    )
    return FetchReport(
        fetched,
        select_lines(kind, fetched.data, since, all_lines),
        mode,
        since,
        downloads,
    )


async def download_document(settings: Settings, object_id: str, dest: Path | None) -> Path:
    """Download one stored document to ``dest`` (a file or directory; None: current directory)."""

    async with TradecloudClient.from_settings(settings) as api:
        return await api.download_document(object_id, dest)


async def logout(settings: Settings) -> LogoutResult:
    """End the cached Tradecloud session and forget its tokens."""

    async with TradecloudClient.from_settings(settings) as api:
        return await api.logout()


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None
