"""The Tradecloud API v2 endpoints tcwebhook calls: orders, shipments, documents, polls, logout.

The client prints nothing and never puts a token or password into an exception. One client may be
shared by many tasks (a background worker, say): its ``auth`` serialises logging in and
refreshing, its ``transport`` paces and retries the requests.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urlsplit

import aiohttp
from yarl import URL

from tcwebhook.datadir import TOKEN_CACHE_NAME
from tcwebhook.errors import ApiAccessDenied, ApiError, ApiNotFound, ApiUnavailable
from tcwebhook.tradecloud.tokens import (
    REFRESH_MARGIN_SECONDS,
    TokenCache,
    TokenManager,
    bearer_headers,
)
from tcwebhook.tradecloud.transport import MAX_ANSWER_BYTES, Answer, Transport, endpoint_url

if TYPE_CHECKING:
    from tcwebhook.config import Settings

USERNAME_ENV = "TRADECLOUD_USERNAME"
PASSWORD_ENV = "TRADECLOUD_PASSWORD"

ObjectKind = Literal["order", "shipment"]
# The polling endpoints (docs/tradecloud.md#api-polling), under the base URL.
PollEndpoint = Literal["order-search/poll", "order-search/poll/single-delivery", "shipment/poll"]
POLL_LIMIT = 100  # at most 100 objects per page


@dataclass(frozen=True)
class Fetched:
    """An order or shipment as the API sent it: the raw body and its parsed form."""

    kind: ObjectKind
    id: str
    raw: bytes
    data: dict[str, Any]


@dataclass(frozen=True)
class PollPage:
    """One page of a poll: the objects, how many match in all, and the cursor."""

    data: list[dict[str, Any]]
    total: int
    last_updated_at: str | None  # exactly as received: the next lastUpdatedAfter


@dataclass(frozen=True)
class DocumentMetadata:
    """``GET /object-storage/document/{objectId}/metadata`` (docs/tradecloud.md#api-documents)."""

    object_id: str
    filename: str | None
    content_type: str | None
    download_url: str


@dataclass(frozen=True)
class LogoutResult:
    """What ``logout`` did: ``logged-out``, ``not-logged-in`` or ``failed`` (with a reason)."""

    outcome: Literal["logged-out", "not-logged-in", "failed"]
    reason: str | None = None


class TradecloudClient:
    """Calls the Tradecloud API v2 endpoints tcwebhook needs, authenticated and paced.

    Use as ``async with TradecloudClient.from_settings(settings) as api``.
    """

    def __init__(
        self,
        base_url: str,
        username: str | None = None,
        password: str | None = None,
        *,
        ca_file: Path | None = None,
        token_cache: TokenCache | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 30.0,
        attempts: int = 4,
        backoff: float = 0.5,
        requests_per_second: float = 10.0,
        refresh_margin: float = REFRESH_MARGIN_SECONDS,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.transport = Transport(
            ca_file=ca_file,
            session=session,
            timeout=timeout,
            attempts=attempts,
            backoff=backoff,
            requests_per_second=requests_per_second,
            max_answer_bytes=max_answer_bytes,
        )
        self.auth = TokenManager(
            self.transport,
            self.base_url,
            username,
            password,
            cache=token_cache,
            refresh_margin=refresh_margin,
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        session: aiohttp.ClientSession | None = None,
        environ: Mapping[str, str] | None = None,
        **options: Any,
    ) -> TradecloudClient:
        """A client for ``settings.tradecloud``, caching tokens in the data directory.

        Username and password fall back to $TRADECLOUD_USERNAME and $TRADECLOUD_PASSWORD.
        """
        environ = os.environ if environ is None else environ
        tradecloud = settings.tradecloud
        return cls(
            tradecloud.api_base_url,
            tradecloud.username or environ.get(USERNAME_ENV),
            tradecloud.password or environ.get(PASSWORD_ENV),
            ca_file=tradecloud.ca_file,
            token_cache=TokenCache(settings.data_dir / TOKEN_CACHE_NAME),
            session=session,
            **options,
        )

    async def __aenter__(self) -> TradecloudClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.transport.close()

    # -- data -------------------------------------------------------------------------------

    async def fetch(self, kind: ObjectKind, object_id: str) -> Fetched:
        """``GET /order/{id}`` or ``GET /shipment/{id}``: the whole object."""
        what = f"{kind} {object_id!r}"
        answer = await self._call("GET", self._url(kind, object_id), what)
        return Fetched(kind, object_id, answer.body, _json_object(answer.body, what))

    async def get_order(self, order_id: str) -> dict[str, Any]:
        """The order object (docs/tradecloud.md#orders) with every line."""
        return (await self.fetch("order", order_id)).data

    async def get_shipment(self, shipment_id: str) -> dict[str, Any]:
        """The shipment object (docs/tradecloud.md#shipments)."""
        return (await self.fetch("shipment", shipment_id)).data

    async def poll(
        self,
        endpoint: PollEndpoint,
        last_updated_after: str,
        offset: int = 0,
        limit: int = POLL_LIMIT,
    ) -> PollPage:
        """``POST {base}/{endpoint}``: objects updated after ``last_updated_after``, one page."""
        what = f"poll of {endpoint} (offset {offset})"
        request = {
            "filters": {"lastUpdatedAfter": last_updated_after},
            "offset": offset,
            "limit": min(limit, POLL_LIMIT),
        }
        url = self._url(*endpoint.split("/"))
        answer = await self._call("POST", url, what, json.dumps(request).encode())
        page = _json_object(answer.body, what)
        data, total = page.get("data"), page.get("total")
        if not isinstance(data, list) or isinstance(total, bool) or not isinstance(total, int):
            raise ApiError(f"Tradecloud's answer to the {what} has no data array or total")
        cursor = page.get("lastUpdatedAt")
        return PollPage(
            [item for item in data if isinstance(item, dict)],
            total,
            cursor if isinstance(cursor, str) and cursor else None,
        )

    async def get_document_metadata(self, object_id: str) -> DocumentMetadata:
        """``{id, filename, contentType, downloadUrl}`` of a stored document."""
        what = f"document {object_id!r}"
        url = self._url("object-storage", "document", object_id, "metadata")
        answer = await self._call("GET", url, what)
        data = _json_object(answer.body, what)
        download_url = data.get("downloadUrl")
        if not isinstance(download_url, str) or not download_url:
            raise ApiError(f"Tradecloud's metadata for {what} has no downloadUrl; try again later")
        filename, content_type = data.get("filename"), data.get("contentType")
        return DocumentMetadata(
            object_id,
            filename if isinstance(filename, str) and filename else None,
            content_type if isinstance(content_type, str) else None,
            download_url,
        )

    async def download_document(self, object_id: str, dest: Path | None = None) -> Path:
        """Download a stored document; ``dest`` is a file, a directory, or None for the cwd.

        The pre-signed ``downloadUrl`` expires within a minute, so it is fetched at once and
        without ``Authorization``. If that fails, the file is streamed through Tradecloud.
        """
        metadata = await self.get_document_metadata(object_id)
        target = _target_path(dest, metadata.filename or object_id)
        what = f"document {object_id!r}"
        try:
            await self._download(metadata.download_url, target, what, authorized=False)
        except ApiError as presigned_failure:
            url = self._url("object-storage", "document", object_id)
            try:
                await self._download(url, target, what, authorized=True)
            except ApiError:
                raise presigned_failure from None
        return target

    async def download_reference(self, document: Mapping[str, Any], directory: Path) -> Path | None:
        """Download a document reference (``objectId`` or ``url``); None when it has neither."""
        object_id = document.get("objectId")
        if isinstance(object_id, str) and object_id:
            return await self.download_document(object_id, directory)
        url = document.get("url")
        if isinstance(url, str) and url:
            name = document.get("name")
            fallback = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
            filename = name if isinstance(name, str) and name else fallback
            target = _target_path(directory, filename or str(document.get("code") or "document"))
            await self._download(url, target, f"document at {url}", authorized=False)
            return target
        return None

    async def logout(self) -> LogoutResult:
        """``POST /authentication/logout`` with the refresh token; forget the cached tokens.

        A failed logout is not fatal (docs/tradecloud.md#api-authentication): the local tokens
        are gone either way.
        """
        tokens = await self.auth.forget()
        if tokens is None:
            return LogoutResult("not-logged-in")
        try:
            answer = await self.transport.send(
                "POST",
                self._url("authentication", "logout"),
                {"Refresh-Token": tokens.refresh},
                "logout",
            )
        except ApiUnavailable as exc:
            return LogoutResult("failed", str(exc))
        if 200 <= answer.status < 300:
            return LogoutResult("logged-out")
        return LogoutResult("failed", f"Tradecloud answered HTTP {answer.status} to the logout")

    # -- HTTP -------------------------------------------------------------------------------

    def _url(self, *segments: str) -> URL:
        return endpoint_url(self.base_url, *segments)

    async def _call(self, method: str, url: URL, what: str, body: bytes | None = None) -> Answer:
        """An authorized data call whose answer is a success, or the error it means."""
        answer = await self.auth.authorized(method, url, what, body)
        self._raise_for_status(answer, what)
        return answer

    def _raise_for_status(self, answer: Answer, what: str) -> None:
        if 200 <= answer.status < 300:
            return
        if answer.status == 403:
            raise ApiAccessDenied(
                f"Tradecloud refused access to {what} (403): {self.auth.username} needs the "
                "integration role and its company must be a party to it"
            )
        if answer.status == 404:
            raise ApiNotFound(
                f"Tradecloud has no {what} (404): check the Tradecloud id (not the purchase "
                f"order or shipment number) and the environment ({self.base_url})"
            )
        raise ApiError(f"Tradecloud answered HTTP {answer.status} to {what}{answer.excerpt()}")

    async def _download(self, url: str | URL, target: Path, what: str, authorized: bool) -> None:
        partial = target.with_name(f".{target.name}.part")

        async def write(response: aiohttp.ClientResponse) -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            with partial.open("wb") as handle:
                async for chunk in response.content.iter_chunked(64 * 1024):
                    handle.write(chunk)

        try:
            if authorized:
                token = await self.auth.access_token()
                answer = await self.transport.send("GET", url, bearer_headers(token), what, write)
            else:
                answer = await self.transport.send("GET", url, {}, what, write, long=True)
            if answer.status != 200:
                if authorized:
                    self._raise_for_status(answer, what)
                raise ApiError(f"the download of {what} answered HTTP {answer.status}")
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        data = json.loads(body, parse_float=Decimal)
    except ValueError:
        raise ApiError(f"Tradecloud's answer for {what} is not JSON; check the base URL") from None
    if not isinstance(data, dict):
        raise ApiError(f"Tradecloud's answer for {what} is not a JSON object")
    return data


def _target_path(dest: Path | None, filename: str) -> Path:
    # Only the last component of a server-chosen name: never write outside the target folder.
    safe = Path(filename.replace("\\", "/")).name.strip()
    if safe in ("", ".", ".."):
        safe = "document"
    if dest is None:
        return Path.cwd() / safe
    return dest / safe if dest.is_dir() else dest
