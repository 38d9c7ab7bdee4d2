"""Why a request was refused, in one line, what a person does about it, and what Tradecloud does
with the answer. Pure: the receiver names the cause, this module words it.

The causes are the receiver's refusal branches (``server/app.py``, ``auth/``); docs/requests.md
has the full table:

- ``not_allowed`` (403): the client is outside ``server.allow_from``;
- ``auth.<Refusal.reason>`` (401; ``auth.keys_unavailable``: 503): the path's authenticator, with
  the static ``missing``/``wrong`` and Entra's ``missing``, ``malformed``, ``algorithm``,
  ``client``, ``role``, ``expired``, ``not_yet_valid``, ``audience``, ``issuer``, ``signature``,
  ``unknown_key``, ``keys_unavailable``;
- ``not_found`` (404), ``method_not_allowed`` (405): routing;
- ``invalid_body``, ``too_deep``, ``too_long``, ``undecodable_body``, ``no_resource_id`` (400);
- ``client_gone``: the client closed the connection mid-body (nothing was sent back);
- ``too_large`` (413), ``txml`` and ``content_type`` (415);
- ``store_unavailable``, ``body_timeout``, ``unexpected`` (503).

No explanation ever holds a credential: fixes name the configuration keys, never their values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tcwebhook.console import printable
from tcwebhook.requestlog.records import AuthPresence, Tradecloud, tradecloud_reaction

if TYPE_CHECKING:
    from tcwebhook.config import Settings

# Where Tradecloud's webhooks come from (docs/tradecloud.md#environments).
TRADECLOUD_SOURCES = "35.204.224.107 and 34.90.20.233 (production), 35.204.36.162 (acceptance)"
_DETAIL_CHARS = 200


@dataclass(frozen=True)
class Explanation:
    """A refusal for a person: ``reason`` (what happened), ``fix`` (what to do)."""

    reason: str
    fix: str
    tradecloud: Tradecloud


@dataclass(frozen=True)
class PathAuth:
    """How one path authenticates: the type and the configuration key that holds it."""

    type: str = "bearer"  # bearer, basic or entra
    key: str = "auth"


@dataclass(frozen=True)
class ReceiverFacts:
    """What the fixes may say about this receiver's configuration (never a credential)."""

    order_path: str = "/tradecloud/order"
    shipment_path: str = "/tradecloud/shipment"
    auth: PathAuth = field(default_factory=PathAuth)
    order_auth: PathAuth | None = None
    shipment_auth: PathAuth | None = None
    max_body_bytes: int = 10 * 1024 * 1024
    body_timeout: float = 30.0
    max_json_depth: int = 64
    max_id_length: int = 256

    @classmethod
    def from_settings(cls, settings: Settings) -> ReceiverFacts:
        server, paths = settings.server, settings.server.paths
        return cls(
            order_path=paths.order,
            shipment_path=paths.shipment,
            auth=PathAuth(settings.auth.type, "auth"),
            order_auth=None
            if paths.order_auth is None
            else PathAuth(paths.order_auth.type, "server.paths.order_auth"),
            shipment_auth=None
            if paths.shipment_auth is None
            else PathAuth(paths.shipment_auth.type, "server.paths.shipment_auth"),
            max_body_bytes=server.max_body_bytes,
            body_timeout=server.limits.body_timeout,
            max_json_depth=server.limits.max_json_depth,
            max_id_length=server.limits.max_id_length,
        )

    def auth_for(self, path: str) -> PathAuth:
        """The authentication of ``path``, chosen as the receiver chooses it."""
        own_paths = ((self.order_path, self.order_auth), (self.shipment_path, self.shipment_auth))
        for prefix, own in own_paths:
            if path == prefix or path.startswith(prefix + "/"):
                return own or self.auth
        return self.auth

    @property
    def paths_sentence(self) -> str:
        return (
            f"{self.order_path} (orders and order documents) and {self.shipment_path} (shipments)"
        )


@dataclass(frozen=True)
class _Request:
    status: int | None
    facts: ReceiverFacts
    path: str
    method: str
    auth: AuthPresence
    detail: str | None


def explain(
    status: int | None,
    cause: str,
    facts: ReceiverFacts,
    *,
    path: str = "",
    method: str = "",
    auth: AuthPresence = "absent",
    detail: str | None = None,
) -> Explanation:
    """The reason, the fix and Tradecloud's reaction for a refused request.

    ``cause``: one of the causes in the module docstring; ``detail``: the receiver's own message
    (a 400 says which part of the body is wrong). An unknown cause is worded from the status.
    """
    request = _Request(status, facts, path, method, auth, detail)
    if cause.startswith("auth."):
        reason, fix = _auth(request, cause.removeprefix("auth."))
    else:
        wording = _CAUSES.get(cause)
        reason, fix = wording(request) if wording is not None else _by_status(request)
    tradecloud = "unknown" if cause == "client_gone" else tradecloud_reaction(status)
    return Explanation(reason, fix, tradecloud)


def _detail(request: _Request, default: str) -> str:
    if not request.detail:
        return default
    return printable(request.detail, limit=_DETAIL_CHARS)


# ---- 401 (and the Entra keys' 503) ---------------------------------------------------------


def _auth(request: _Request, refusal: str) -> tuple[str, str]:
    path_auth = request.facts.auth_for(request.path)
    if path_auth.type == "entra":
        return _entra(refusal, path_auth.key)
    return _static(refusal, path_auth, request.auth)


_SCHEME_OF_TYPE = {"bearer": "Bearer", "basic": "Basic"}


def _static(refusal: str, path_auth: PathAuth, presence: AuthPresence) -> tuple[str, str]:
    key, expected = path_auth.key, _SCHEME_OF_TYPE.get(path_auth.type, "Bearer")
    portal = "in the Tradecloud portal (My Company → Settings → Webhook Integration)"
    if expected == "Bearer":
        enter = f"enter the token of {key}.token"
        retype = (
            f"the Authorization header does not match {key}.token — re-enter the token {portal}: "
            "the token alone, without the word Bearer, spaces or line breaks"
        )
    else:
        enter = f"enter {key}.username and {key}.password"
        retype = (
            f"the username or password does not match {key}.username / {key}.password — "
            f"re-enter both {portal}"
        )
    if refusal == "missing" or presence == "absent":
        return (
            "no Authorization header",
            f"choose {expected} authentication for this webhook {portal} and {enter}",
        )
    sent = presence.removeprefix("present (").removesuffix(")")
    if sent != expected:
        return (
            f"{sent} credentials, but this path expects {expected}",
            f"switch this webhook's authentication to {expected} {portal} and {enter}",
        )
    return (f"wrong {expected} credentials", retype)


_ENTRA_FIXES: dict[str, tuple[str, str]] = {
    "missing": (
        "no bearer token (this path expects an Entra access token)",
        "choose OAuth 2.0 (Microsoft identity platform) for this webhook in the Tradecloud portal; "
        "shipment webhooks cannot use it: give the shipment path Basic or Bearer in "
        "server.paths.shipment_auth",
    ),
    "malformed": (
        "the bearer token is not an Entra access token",
        "the portal's authentication URL must be the tenant's token endpoint "
        "(https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token); a static token is "
        "refused on an Entra path",
    ),
    "algorithm": (
        "the token is not signed with RS256",
        "the portal's authentication URL must be the tenant's Entra token endpoint; "
        "only Entra-signed access tokens are accepted",
    ),
    "expired": (
        "the access token has expired",
        "check this host's clock (NTP): tokens are accepted within 120 s of skew",
    ),
    "not_yet_valid": (
        "the access token is not valid yet",
        "check this host's clock (NTP): tokens are accepted within 120 s of skew",
    ),
    "audience": (
        "the access token is for another audience",
        "the portal's scope must be one of {key}.audiences followed by /.default "
        "(e.g. api://tcwebhook/.default), or add the token's audience to {key}.audiences",
    ),
    "issuer": (
        "the access token comes from another tenant or token version",
        "check {key}.tenant and {key}.token_versions against the tenant in the portal's "
        "authentication URL",
    ),
    "client": (
        "the access token was issued to another client",
        "add the client ID entered in the Tradecloud portal to {key}.client_ids",
    ),
    "role": (
        "the access token lacks the required app role",
        "assign one of {key}.roles to Tradecloud's client application in Entra ID "
        "(Enterprise applications → the API → Users and groups / app role assignment)",
    ),
    "signature": (
        "the access token's signature is wrong",
        "the token was altered or signed by someone else: check {key}.tenant and "
        "{key}.openid_config_url",
    ),
    "unknown_key": (
        "the access token is signed by a key the tenant does not publish",
        "check {key}.tenant and {key}.openid_config_url: the token comes from another tenant",
    ),
    "keys_unavailable": (
        "the tenant's signing keys could not be fetched to check the token",
        "check that this host reaches login.microsoftonline.com (proxy, firewall, DNS) or "
        "{key}.openid_config_url with {key}.ca_file; Tradecloud retries, nothing is lost",
    ),
}


def _entra(refusal: str, key: str) -> tuple[str, str]:
    reason, fix = _ENTRA_FIXES.get(
        refusal,
        ("the access token was refused", "check the Entra settings under {key}"),
    )
    return reason, fix.format(key=key)


# ---- everything else -----------------------------------------------------------------------


def _not_allowed(request: _Request) -> tuple[str, str]:
    return (
        "the client address is not in server.allow_from",
        f"Tradecloud sends from {TRADECLOUD_SOURCES}: list those in server.allow_from; behind "
        "a reverse proxy, add the proxy to server.proxy.trusted so the real client is seen",
    )


def _not_found(request: _Request) -> tuple[str, str]:
    facts = request.facts
    return (
        "no webhook at this path",
        f"this receiver takes webhooks at {facts.paths_sentence}: correct the webhook URL in "
        "the Tradecloud portal (or server.paths)",
    )


def _method_not_allowed(request: _Request) -> tuple[str, str]:
    facts, path = request.facts, request.path
    below = any(path.startswith(base + "/") for base in (facts.order_path, facts.shipment_path))
    if below and request.method in ("POST", "PUT"):
        return (
            "a POST below a webhook path (an id in the URL of a POST webhook)",
            f"a POST webhook's URL ends at the path itself ({facts.paths_sentence}); only the "
            "legacy GET webhook puts {orderId} or {shipmentId} in the URL",
        )
    return (
        "this method is not accepted here",
        "Tradecloud sends POST (GET with the id and PUT are legacy): choose POST for this "
        "webhook in the Tradecloud portal",
    )


def _invalid_body(request: _Request) -> tuple[str, str]:
    return (
        _detail(request, "the body is not a Tradecloud webhook"),
        "Tradecloud sends one JSON object with eventName, meta and exactly one payload key: "
        "compare the excerpt with the webhook's settings in the portal (format JSON); if "
        "another tool sent it, fix that sender (Tradecloud never retries a 400)",
    )


def _too_deep(request: _Request) -> tuple[str, str]:
    return (
        "the body nests deeper than server.limits.max_json_depth "
        f"({request.facts.max_json_depth} levels)",
        "Tradecloud's events nest about 10 levels: this is not a Tradecloud event; raise "
        "server.limits.max_json_depth only if a real one is refused",
    )


def _too_long(request: _Request) -> tuple[str, str]:
    return (
        _detail(
            request,
            f"an id is longer than server.limits.max_id_length ({request.facts.max_id_length})",
        ),
        "raise server.limits.max_id_length only if a real Tradecloud event is refused",
    )


def _undecodable(request: _Request) -> tuple[str, str]:
    return (
        _detail(request, "the body's Content-Encoding or chunked framing is broken"),
        "the sender (or a proxy in between) sends a corrupt compressed or chunked body: "
        "send it uncompressed, or fix the proxy",
    )


def _no_resource_id(request: _Request) -> tuple[str, str]:
    facts = request.facts
    return (
        "a GET webhook without the order or shipment id",
        "the portal URL of a GET webhook must hold the placeholder, e.g. "
        f"https://<host>{facts.order_path}/{{orderId}} or "
        f"https://<host>{facts.shipment_path}?shipmentId={{shipmentId}}",
    )


def _client_gone(request: _Request) -> tuple[str, str]:
    return (
        "the client closed the connection before the whole body arrived",
        "a network drop or a sender that gave up; if it repeats, look for a proxy or load "
        "balancer with a short timeout in between",
    )


def _too_large(request: _Request) -> tuple[str, str]:
    limit = request.facts.max_body_bytes
    return (
        f"the body is larger than server.max_body_bytes ({limit} bytes)",
        "raise server.max_body_bytes if Tradecloud really sends such large events "
        "(an order with 500 lines is a few MB)",
    )


def _txml(request: _Request) -> tuple[str, str]:
    return (
        "the webhook sends tXML (XML), which is not supported yet",
        "choose the JSON format for this webhook in the Tradecloud portal",
    )


def _content_type(request: _Request) -> tuple[str, str]:
    return (
        "a Content-Type that is neither JSON nor tXML",
        "send application/json (Tradecloud's JSON format does); choose JSON in the portal",
    )


def _store_unavailable(request: _Request) -> tuple[str, str]:
    return (
        "the event store could not take the event",
        "run `tcwebhook status` to see why (disk full, database locked, PostgreSQL down); "
        "Tradecloud retries, nothing is lost",
    )


def _body_timeout(request: _Request) -> tuple[str, str]:
    return (
        "the body did not arrive within server.limits.body_timeout "
        f"({request.facts.body_timeout:g} s)",
        "a slow link or a stalled proxy; Tradecloud retries — raise server.limits.body_timeout "
        "if large events arrive slowly",
    )


def _unexpected(request: _Request) -> tuple[str, str]:
    return (
        _detail(request, "an unexpected error in the receiver"),
        "the receiver's log holds the traceback: please report it; Tradecloud retries",
    )


_CAUSES: dict[str, Callable[[_Request], tuple[str, str]]] = {
    "not_allowed": _not_allowed,
    "not_found": _not_found,
    "method_not_allowed": _method_not_allowed,
    "invalid_body": _invalid_body,
    "too_deep": _too_deep,
    "too_long": _too_long,
    "undecodable_body": _undecodable,
    "no_resource_id": _no_resource_id,
    "client_gone": _client_gone,
    "too_large": _too_large,
    "txml": _txml,
    "content_type": _content_type,
    "store_unavailable": _store_unavailable,
    "body_timeout": _body_timeout,
    "unexpected": _unexpected,
}
CAUSES: tuple[str, ...] = tuple(_CAUSES)

_BY_STATUS: dict[int, Callable[[_Request], tuple[str, str]]] = {
    403: _not_allowed,
    404: _not_found,
    405: _method_not_allowed,
    400: _invalid_body,
    413: _too_large,
    415: _content_type,
    503: _unexpected,
}


def _by_status(request: _Request) -> tuple[str, str]:
    if request.status == 401:
        return _auth(request, "wrong" if request.auth != "absent" else "missing")
    wording = _BY_STATUS.get(request.status or 0)
    if wording is not None:
        return wording(request)
    return (
        _detail(request, f"answered {request.status}"),
        "see the receiver's log for this request",
    )


_PRESENCE_OF_TYPE: dict[str, AuthPresence] = {
    "bearer": "present (Bearer)",
    "entra": "present (Bearer)",
    "basic": "present (Basic)",
}


def stored_auth(facts: ReceiverFacts, path: str) -> AuthPresence:
    """The ``auth`` of a stored request: the scheme its path's authentication accepted (the
    header itself is never stored)."""
    return _PRESENCE_OF_TYPE.get(facts.auth_for(path).type, "present (other)")
