"""What keeps the inspector a private, read-mostly page: security headers on every answer,
a Host check (against DNS rebinding), HTTP Basic off loopback, and cross-site request
protection for every action (a per-session token and an Origin check)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from aiohttp import hdrs, web
from aiohttp.typedefs import Middleware

from tcwebhook.auth.static import StaticCredentials
from tcwebhook.config import AuthSettings, InspectorSettings
from tcwebhook.errors import StoreUnavailable
from tcwebhook.local import is_loopback
from tcwebhook.server.errorlog import FailureLog

SESSION_COOKIE = "tcwebhook_inspector"
# A page for one person: more requests at once than this are a runaway script, not a browser.
MAX_IN_FLIGHT = 64
CSRF_FIELD = "csrf_token"

# No inline script or style, nothing from another origin, never inside a frame.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: with no-referrer a browser sends "Origin: null" on POST.
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}

# aiohttp >= 3.13 wants typed request keys; older releases take plain strings.
_SESSION: Any = web.RequestKey("session", str) if hasattr(web, "RequestKey") else "session"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class PageSecurity:
    """The checks of one inspector app: its secret, allowed hosts and optional login."""

    def __init__(self, settings: InspectorSettings, failures: FailureLog | None = None) -> None:
        # Where a page that fails is reported: one line per route and interval, no payload.
        self.failures = failures or FailureLog()
        self._secret = secrets.token_bytes(32)
        self.login: StaticCredentials | None = None
        if settings.username and settings.password:
            self.login = StaticCredentials(
                AuthSettings(type="basic", username=settings.username, password=settings.password)
            )
        self.loopback_only = is_loopback(settings.host)
        self.in_flight = 0  # requests being answered (live streams included)

    def csrf_token(self, session: str) -> str:
        return hmac.new(self._secret, session.encode(), hashlib.sha256).hexdigest()

    def valid_csrf(self, session: str | None, token: str | None) -> bool:
        if not session or not token:
            return False
        return hmac.compare_digest(self.csrf_token(session), token)

    def host_allowed(self, request: web.Request) -> bool:
        """On loopback, only loopback names: a page that rebinds its own name to 127.0.0.1
        must not be able to read this one."""
        if not self.loopback_only:
            return True
        host = request.host.rsplit(":", 1)[0] if not request.host.endswith("]") else request.host
        return is_loopback(host)


def session_of(request: web.Request) -> str | None:
    value = request.cookies.get(SESSION_COOKIE)
    return value if value and len(value) <= 64 else None


def same_origin(request: web.Request) -> bool:
    """The request comes from a page of this inspector (Origin, else Referer, must match)."""
    expected = f"{request.scheme}://{request.host}"
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is not None:
        return origin == expected
    referer = request.headers.get(hdrs.REFERER)
    return referer is not None and (referer == expected or referer.startswith(expected + "/"))


def middleware(guard: PageSecurity) -> Middleware:
    @web.middleware
    async def protect(request: web.Request, handler: Handler) -> web.StreamResponse:
        if guard.in_flight >= MAX_IN_FLIGHT:
            raise web.HTTPServiceUnavailable(text="too many requests at once; try again")
        guard.in_flight += 1
        try:
            response = await _checked(guard, request, handler)
        except web.HTTPException as exc:  # refusals, redirects, not-found: the same headers
            _secure(exc.headers)
            raise
        except StoreUnavailable as exc:  # a busy or missing store: a sentence, not a traceback
            raise web.HTTPServiceUnavailable(text=str(exc), headers=SECURITY_HEADERS) from None
        except ConnectionError:
            raise  # the browser went away
        except Exception as exc:
            raise _failed(guard, request, exc) from None
        finally:
            guard.in_flight -= 1
        if not response.prepared:  # a live stream has sent its headers already
            _secure(response.headers)
        return response

    return protect


def _failed(guard: PageSecurity, request: web.Request, exc: Exception) -> web.HTTPException:
    """A page that broke: one log line naming the route and the exception's type (its message
    may quote the payload), and a page that says so instead of a bare 500."""
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else request.path[:100]
    guard.failures.report(f"inspector: {request.method} {route} failed", exc)
    return web.HTTPInternalServerError(
        text=(
            f"the inspector could not show this page ({type(exc).__name__}); the events are "
            "stored and delivered as usual, and the server's log names the failure"
        ),
        headers=SECURITY_HEADERS,
    )


def _secure(headers: MutableMapping[str, str]) -> None:
    for name, value in SECURITY_HEADERS.items():
        headers.setdefault(name, value)


async def _checked(
    guard: PageSecurity, request: web.Request, handler: Handler
) -> web.StreamResponse:
    if not guard.host_allowed(request):
        raise web.HTTPMisdirectedRequest(text="this inspector answers on its loopback address only")
    if guard.login is not None and not guard.login.matches(request.headers.get(hdrs.AUTHORIZATION)):
        raise web.HTTPUnauthorized(
            text="log in with inspector.username / inspector.password",
            headers={hdrs.WWW_AUTHENTICATE: 'Basic realm="tcwebhook inspector", charset="UTF-8"'},
        )
    session = session_of(request)
    if request.method == "POST":
        if not same_origin(request):
            raise web.HTTPForbidden(text="refused: this action must come from the inspector's page")
        form = await request.post()
        token = form.get(CSRF_FIELD)
        if not guard.valid_csrf(session, token if isinstance(token, str) else None):
            raise web.HTTPForbidden(text="refused: the page's session token is missing or stale")
    request[_SESSION] = session or secrets.token_urlsafe(24)
    response = await handler(request)
    if session is None and not response.prepared:
        response.set_cookie(
            SESSION_COOKIE,
            request[_SESSION],
            httponly=True,
            samesite="Strict",
            secure=request.secure,
            path="/",
        )
    return response


def session_id(request: web.Request) -> str:
    """This browser's session (new ones are set as a cookie with the response)."""
    return str(request[_SESSION])
