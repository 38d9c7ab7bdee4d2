"""A fake Tradecloud API v2 (docs/tradecloud.md#the-tradecloud-api) for tests and demos.

Faithful where the client's behaviour depends on it: tokens arrive in ``Set-Authorization`` and
``Set-Refresh-Token`` headers; refresh and logout accept only ``Refresh-Token`` (an
``Authorization`` header is refused); refresh tokens are single-use; access tokens are JWTs whose
``exp`` the client may read, and an expired or unknown one gets 401; documents go through
metadata and a pre-signed download URL that expires and refuses an ``Authorization`` header.
The poll endpoints (docs/tradecloud.md#api-polling) filter on ``lastUpdatedAfter``, page with
``offset``/``limit`` (at most 100) and answer ``data``, ``total`` and ``lastUpdatedAt``. Failures
can be queued per route (``fail_next["order"] = [503]``; ``(429, 1.0)`` adds ``Retry-After: 1.0``;
``0`` lets one call through first).

The polls can lie the way a real service under load or with a bug might: ``before_poll`` changes
data between pages (it gets the poll's number, counted from 1 over all poll routes),
``poll_lie`` rewrites an answer (``repeat_answer``, ``padded_with_repeats``,
``page_cursor``, ``with_objects`` below), ``poll_order`` sorts answers otherwise than oldest
first, and ``huge_poll_answer`` sends a valid answer of that
many bytes, streamed (announced with Content-Length unless ``huge_poll_chunked``).

Run it on its own::

    python -m tests.helpers.fake_tradecloud --port 8444 --ca-out fake-ca.pem
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import copy
import hashlib
import hmac
import json
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.helpers.paths import SAMPLES

USERNAME = "integration@blueharbour.example"
PASSWORD = "correct horse battery staple"
PRESIGNED_LIFETIME = 60.0

ORDER_ID = "3b8f2c1e-5d7a-4e9b-8c2f-1a6d9e4b7c30-PO2025000417"
SHIPMENT_ID = "c7a19e42-0f3b-4d6e-a5c8-92e1b7d4f615-SN20250613"
DOCUMENTS_ORDER_ID = "3b8f2c1e-5d7a-4e9b-8c2f-1a6d9e4b7c30-PO/2025 0418"
FORBIDDEN_ORDER_ID = "00000000-0000-0000-0000-000000000000-PO403"


@dataclass
class Call:
    route: str
    method: str
    path: str
    authorization: str | None
    refresh_token: str | None
    at: float = 0.0  # time.monotonic() when it arrived
    body: Any = None  # the parsed JSON body of a poll


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(subject: str, lifetime: float) -> str:
    """An unsigned-looking JWT with ``exp``; the signature is random (nobody verifies it)."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"sub": subject, "exp": int(time.time() + lifetime), "jti": secrets.token_hex(8)}
    return f"{header}.{_b64(json.dumps(claims).encode())}.{_b64(secrets.token_bytes(16))}"


@dataclass
class FakeTradecloud:
    username: str = USERNAME
    password: str = PASSWORD
    access_lifetime: float = 3600.0
    refresh_lifetime: float = 24 * 3600.0
    # The header "may already carry" one (docs/tradecloud.md#api-authentication).
    bearer_prefix_on_refresh: bool = True
    orders: dict[str, bytes] = field(default_factory=dict)
    shipments: dict[str, bytes] = field(default_factory=dict)
    documents: dict[str, tuple[str, str, bytes]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    forbidden: set[str] = field(default_factory=set)
    fail_next: dict[str, list[int | tuple[int, float]]] = field(default_factory=dict)
    access_tokens: dict[str, float] = field(default_factory=dict)
    refresh_tokens: dict[str, float] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    # A misbehaving poll: rewrites each answer (data, total) before it is sent.
    poll_answer: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    # Called before the n-th poll is answered (n counted from 1 over all poll routes).
    before_poll: Callable[[int], None] | None = None
    # Rewrites the n-th poll's answer; it may look at the answers sent before (poll_answers).
    poll_lie: Callable[[int, dict[str, Any]], dict[str, Any]] | None = None
    poll_answers: list[dict[str, Any]] = field(default_factory=list)
    huge_poll_answer: int = 0  # bytes; 0: answers of their natural size
    # The order of poll answers; None: oldest change first (what tcwebhook expects).
    poll_order: Callable[[dict[str, Any]], Any] | None = None
    huge_poll_chunked: bool = False
    counts: Counter[str] = field(default_factory=Counter)
    base_url: str = ""
    _secret: bytes = field(default_factory=lambda: secrets.token_bytes(16))

    # -- set-up -----------------------------------------------------------------------------

    @classmethod
    def with_samples(cls, **options: Any) -> FakeTradecloud:
        """Serves the shared order.json and shipment.json, and an order with documents."""
        fake = cls(**options)
        order = json.loads((SAMPLES / "order.json").read_text(encoding="utf-8"))
        fake.orders[ORDER_ID] = (SAMPLES / "order.json").read_bytes()
        fake.shipments[SHIPMENT_ID] = (SAMPLES / "shipment.json").read_bytes()
        fake.forbidden.add(FORBIDDEN_ORDER_ID)
        fake.documents["1c9a7b52-3d84-4e06-b1f7-95a2c4e8d013"] = (
            "order-confirmation-SO-88121.pdf",
            "application/pdf",
            b"%PDF-1.4 order confirmation\n",
        )
        fake.documents["4a7d1ed4-14e4-4e5b-9b0c-2f8e61c3a7d2"] = (
            "packing-list-DA-2025-07-0091.pdf",
            "application/pdf",
            b"%PDF-1.4 packing list\n",
        )
        fake.files["drawing-DWG-4411.txt"] = b"drawing DWG-4411 rev B\n"
        with_documents = copy.deepcopy(order)
        with_documents["id"] = DOCUMENTS_ORDER_ID
        with_documents["supplierOrder"]["documents"] = [
            {
                "code": "OC-88121",
                "name": "order-confirmation-SO-88121.pdf",
                "type": "General",
                "objectId": "1c9a7b52-3d84-4e06-b1f7-95a2c4e8d013",
            }
        ]
        with_documents["lines"][0]["buyerLine"]["documents"] = [
            {"code": "DWG-4411", "name": "drawing-DWG-4411.txt", "url": "{base}/files/drawing"},
            {"code": "NOTE-1", "name": "metadata only"},
        ]
        fake.orders[DOCUMENTS_ORDER_ID] = json.dumps(with_documents).encode()
        return fake

    def expire_access_tokens(self) -> None:
        """Tradecloud's side forgets every access token (their `exp` claims still look valid)."""
        for token in self.access_tokens:
            self.access_tokens[token] = 0.0

    def routes(self, name: str) -> list[Call]:
        return [call for call in self.calls if call.route == name]

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/v2/authentication/login", self._login, name="login")
        app.router.add_get("/v2/authentication/refresh", self._refresh, name="refresh")
        app.router.add_post("/v2/authentication/logout", self._logout, name="logout")
        app.router.add_get("/v2/order/{id}", self._order, name="order")
        app.router.add_get("/v2/shipment/{id}", self._shipment, name="shipment")
        app.router.add_get(
            "/v2/object-storage/document/{id}/metadata", self._metadata, name="metadata"
        )
        app.router.add_get("/v2/object-storage/document/{id}", self._stream, name="stream")
        app.router.add_get("/s3/{id}", self._presigned, name="s3")
        app.router.add_get("/v2/files/{name}", self._file, name="files")
        app.router.add_post("/v2/order-search/poll", self._poll_orders, name="order-poll")
        app.router.add_post(
            "/v2/order-search/poll/single-delivery", self._poll_orders, name="order-poll-single"
        )
        app.router.add_post("/v2/shipment/poll", self._poll_shipments, name="shipment-poll")
        return app

    # -- middleware -------------------------------------------------------------------------

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        route = request.match_info.route.name or "unknown"
        body = None
        if route.endswith("-poll") or route.endswith("-poll-single"):
            with contextlib.suppress(ValueError):
                body = json.loads(await request.read())
        self.calls.append(
            Call(
                route,
                request.method,
                request.raw_path,
                request.headers.get("Authorization"),
                request.headers.get("Refresh-Token"),
                time.monotonic(),
                body,
            )
        )
        self.counts[route] += 1
        queued = self.fail_next.get(route)
        if queued and queued[0] == 0:  # 0: answer this one normally, fail a later one
            queued.pop(0)
        elif queued:
            failure = queued.pop(0)
            status, retry_after = failure if isinstance(failure, tuple) else (failure, None)
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
            return web.json_response({"error": "injected failure"}, status=status, headers=headers)
        return await handler(request)

    # -- authentication ---------------------------------------------------------------------

    def _issue(self) -> dict[str, str]:
        access = make_jwt(self.username, self.access_lifetime)
        refresh = make_jwt(self.username, self.refresh_lifetime)
        self.access_tokens[access] = time.time() + self.access_lifetime
        self.refresh_tokens[refresh] = time.time() + self.refresh_lifetime
        return {"Set-Authorization": access, "Set-Refresh-Token": refresh}

    async def _login(self, request: web.Request) -> web.Response:
        expected = "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return web.json_response({"status": "unauthorized"}, status=401)
        return web.json_response(
            {"username": self.username, "status": "authenticated"}, headers=self._issue()
        )

    async def _refresh(self, request: web.Request) -> web.Response:
        if "Authorization" in request.headers:
            return web.json_response({"error": "send only Refresh-Token"}, status=400)
        token = request.headers.get("Refresh-Token", "")
        expiry = self.refresh_tokens.pop(token, None)  # single-use
        if expiry is None or expiry < time.time():
            return web.json_response({"status": "unauthorized"}, status=401)
        headers = self._issue()
        if self.bearer_prefix_on_refresh:
            headers["Set-Authorization"] = "Bearer " + headers["Set-Authorization"]
        return web.json_response({"status": "refreshed"}, headers=headers)

    async def _logout(self, request: web.Request) -> web.Response:
        if "Authorization" in request.headers or await request.read():
            return web.json_response({"error": "send only Refresh-Token"}, status=400)
        self.refresh_tokens.pop(request.headers.get("Refresh-Token", ""), None)
        return web.json_response({"status": "logged out"})

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return False
        return self.access_tokens.get(header[7:], 0.0) > time.time()

    # -- data -------------------------------------------------------------------------------

    async def _order(self, request: web.Request) -> web.Response:
        return self._object(request, self.orders)

    async def _shipment(self, request: web.Request) -> web.Response:
        return self._object(request, self.shipments)

    def _object(self, request: web.Request, objects: dict[str, bytes]) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"error": "unauthorized"}, status=401)
        object_id = request.match_info["id"]
        if object_id in self.forbidden:
            return web.json_response({"error": "forbidden"}, status=403)
        body = objects.get(object_id)
        if body is None:
            return web.json_response({"error": "not found"}, status=404)
        text = body.decode().replace("{base}", self.base_url)
        return web.Response(text=text, content_type="application/json")

    async def _poll_orders(self, request: web.Request) -> web.Response:
        return await self._poll(request, self.orders, in_meta=False)

    async def _poll_shipments(self, request: web.Request) -> web.Response:
        return await self._poll(request, self.shipments, in_meta=True)

    async def _poll(
        self, request: web.Request, objects: dict[str, bytes], in_meta: bool
    ) -> web.Response:
        """Objects updated after ``filters.lastUpdatedAfter``, oldest first, one page."""
        if not self._authorized(request):
            return web.json_response({"error": "unauthorized"}, status=401)
        try:
            query = json.loads(await request.read())
            after = _instant(query["filters"]["lastUpdatedAfter"])
            offset, limit = int(query.get("offset", 0)), int(query.get("limit", 100))
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "bad poll request"}, status=400)
        if after is None or not 0 < limit <= 100 or offset < 0:
            return web.json_response({"error": "bad filters, offset or limit"}, status=400)
        number = len(self.poll_answers) + 1
        if self.before_poll is not None:
            self.before_poll(number)
        if self.huge_poll_answer:
            self.poll_answers.append({})
            return await self._huge_answer(request)
        matching = []
        for body in objects.values():
            obj = json.loads(body)
            stamp = (obj.get("meta") or {}).get("lastUpdatedAt") if in_meta else None
            stamp = stamp or obj.get("lastUpdatedAt")
            instant = _instant(stamp)
            if instant is not None and instant > after:
                matching.append((instant, stamp, obj))
        matching.sort(key=lambda item: (item[0], item[2].get("id", "")))
        if self.poll_order is not None:
            matching.sort(key=lambda item: self.poll_order(item[2]))  # type: ignore[misc]
        page = [obj for _, _, obj in matching[offset : offset + limit]]
        answer: dict[str, Any] = {"data": page, "total": len(matching)}
        if matching:  # the newest change matching, whatever the order
            answer["lastUpdatedAt"] = max(matching, key=lambda item: item[0])[1]
        if self.poll_answer is not None:
            answer = self.poll_answer(answer)
        if self.poll_lie is not None:
            answer = self.poll_lie(number, answer)
        self.poll_answers.append(answer)
        return web.json_response(answer)

    async def _huge_answer(self, request: web.Request) -> web.StreamResponse:
        """``{"data": [], "total": 0, "padding": "xxx…"}`` of ``huge_poll_answer`` bytes, made
        as it is sent (the fake never holds it whole)."""
        head, tail = b'{"data": [], "total": 0, "padding": "', b'"}'
        size = max(self.huge_poll_answer, len(head) + len(tail))
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if not self.huge_poll_chunked:
            response.content_length = size
        await response.prepare(request)
        await response.write(head)
        left = size - len(head) - len(tail)
        chunk = b"x" * (1 << 20)
        with contextlib.suppress(ConnectionError):  # the client may stop reading
            while left > 0:
                await response.write(chunk[: min(left, len(chunk))])
                left -= len(chunk)
            await response.write(tail)
            await response.write_eof()
        return response

    async def _metadata(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"error": "unauthorized"}, status=401)
        object_id = request.match_info["id"]
        if object_id not in self.documents:
            return web.json_response({"error": "not found"}, status=404)
        filename, content_type, _ = self.documents[object_id]
        expires = int(time.time() + PRESIGNED_LIFETIME)
        signature = self._sign(object_id, expires)
        root = str(request.url.origin())
        return web.json_response(
            {
                "id": object_id,
                "filename": filename,
                "contentType": content_type,
                "downloadUrl": f"{root}/s3/{object_id}?X-Amz-Expires={expires}"
                f"&X-Amz-Signature={signature}",
            }
        )

    def _sign(self, object_id: str, expires: int) -> str:
        message = f"{object_id}:{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    async def _presigned(self, request: web.Request) -> web.Response:
        if "Authorization" in request.headers:
            # Like S3: a pre-signed URL plus an Authorization header is two auth mechanisms.
            return web.Response(status=400, text="Only one auth mechanism allowed")
        object_id = request.match_info["id"]
        try:
            expires = int(request.query.get("X-Amz-Expires", ""))
        except ValueError:
            return web.Response(status=403, text="AccessDenied")
        signature = request.query.get("X-Amz-Signature", "")
        valid = hmac.compare_digest(signature, self._sign(object_id, expires))
        if not valid or expires < time.time() or object_id not in self.documents:
            return web.Response(status=403, text="AccessDenied: Request has expired")
        _, content_type, content = self.documents[object_id]
        return web.Response(body=content, content_type=content_type)

    async def _stream(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"error": "unauthorized"}, status=401)
        document = self.documents.get(request.match_info["id"])
        if document is None:
            return web.json_response({"error": "not found"}, status=404)
        return web.Response(body=document[2], content_type=document[1])

    async def _file(self, request: web.Request) -> web.Response:
        # A partner's server for `url` documents: no authentication at all.
        name = request.match_info["name"]
        for filename, content in self.files.items():
            if filename.startswith(name):
                return web.Response(body=content, content_type="text/plain")
        return web.Response(status=404)


# ------------------------------------------------------------------------------------------
# Lies a poll can tell (for ``poll_lie``)

PollLie = Callable[[int, dict[str, Any]], dict[str, Any]]


def repeat_answer(fake: FakeTradecloud, at: int, of: int) -> PollLie:
    """The ``at``-th poll is answered with the ``of``-th poll's answer, whatever was asked."""

    def lie(number: int, answer: dict[str, Any]) -> dict[str, Any]:
        return copy.deepcopy(fake.poll_answers[of - 1]) if number == at else answer

    return lie


def padded_with_repeats(extra: int, at: int = 1) -> PollLie:
    """The ``at``-th answer holds ``extra`` more objects than asked: copies of its first ones."""

    def lie(number: int, answer: dict[str, Any]) -> dict[str, Any]:
        if number != at:
            return answer
        data = answer["data"]
        return dict(answer, data=data + copy.deepcopy(data[:extra]))

    return lie


def page_cursor(value: str) -> PollLie:
    """Every answer's page-level ``lastUpdatedAt`` is ``value`` (say, years ahead)."""

    def lie(number: int, answer: dict[str, Any]) -> dict[str, Any]:
        return dict(answer, lastUpdatedAt=value)

    return lie


def with_objects(*objects: dict[str, Any], at: int = 1) -> PollLie:
    """The ``at``-th answer also holds ``objects`` (say, one without an id or a timestamp)."""

    def lie(number: int, answer: dict[str, Any]) -> dict[str, Any]:
        if number != at:
            return answer
        data = answer["data"] + [copy.deepcopy(obj) for obj in objects]
        return dict(answer, data=data, total=answer["total"] + len(objects))

    return lie


def _instant(value: Any) -> Any:
    from tcwebhook.changes import parse_instant

    return parse_instant(value)


# ------------------------------------------------------------------------------------------
# Standalone


async def _serve(host: str, port: int, ca_out: Path, access_lifetime: float) -> None:
    import trustme

    ca = trustme.CA()
    certificate = ca.issue_cert("localhost", "127.0.0.1", "::1")
    ca.cert_pem.write_to_path(str(ca_out))
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    fake = FakeTradecloud.with_samples(access_lifetime=access_lifetime)
    runner = web.AppRunner(fake.app())
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=context)
    await site.start()
    server = site._server
    sockets = getattr(server, "sockets", None) or []
    actual = sockets[0].getsockname()[1] if sockets else port
    fake.base_url = f"https://{host}:{actual}/v2"
    print(f"fake Tradecloud API at {fake.base_url}", flush=True)
    print(f"CA certificate: {ca_out}", flush=True)
    print(f"user: {fake.username}  password: {fake.password}", flush=True)
    print(f"order: {ORDER_ID}  shipment: {SHIPMENT_ID}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ca-out", type=Path, default=Path("fake-tradecloud-ca.pem"))
    parser.add_argument("--access-lifetime", type=float, default=3600.0)
    arguments = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            _serve(arguments.host, arguments.port, arguments.ca_out, arguments.access_lifetime)
        )


if __name__ == "__main__":
    main()
