"""What the receiver makes of a request's headers: which never to store (credentials), and which
content types it takes.

Both are decided once per distinct value: a sender repeats the same few on every request, and
deciding costs more than looking up
(docs/performance-notes.md#17-less-per-request-work-on-the-loop).
"""

from __future__ import annotations

from aiohttp import hdrs, web

from tcwebhook.errors import UnsupportedContentType

# Headers never stored: they carry credentials.
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
# Never stored either: a proxy or a client may add a credential under a name of its own.
_SECRET_HEADER_WORDS = ("token", "secret", "passw", "api-key", "apikey", "x-auth", "credential")
_JSON_TYPES = ("application/json", "text/json")
_XML_TYPES = ("application/xml", "text/xml")
# The values come from clients: at most this many decisions are kept.
REMEMBERED = 256

_secret_names: dict[str, bool] = {}
_accepted_types: dict[str, bool] = {}


def secret_header(name: str) -> bool:
    """Whether a header of this name may carry a credential, and so is never stored."""
    secret = _secret_names.get(name)
    if secret is None:
        lower = name.lower()
        secret = lower in _SECRET_HEADERS or any(word in lower for word in _SECRET_HEADER_WORDS)
        _remember(_secret_names, name, secret)
    return secret


def check_content_type(request: web.Request) -> None:
    """An UnsupportedContentType unless the body is declared JSON or tXML, or not declared."""
    header = request.headers.get(hdrs.CONTENT_TYPE)
    if header is None:
        return  # Tradecloud does not document the header: accept the body if it parses
    if _accepted_types.get(header):
        return
    mime = request.content_type.lower()
    # JSON, or tXML: Tradecloud's XML rendering of the same body (docs/tradecloud.md#txml)
    if mime in _JSON_TYPES or mime.endswith("+json") or mime in _XML_TYPES or mime.endswith("+xml"):
        _remember(_accepted_types, header, True)
        return
    raise UnsupportedContentType(
        f"content type {mime} is not supported; send application/json or tXML (application/xml)"
    )


def _remember(decisions: dict[str, bool], value: str, decided: bool) -> None:
    if len(decisions) >= REMEMBERED:
        decisions.clear()
    decisions[value] = decided
