"""``tcwebhook init``: from a few answers to a working ``tcwebhook.yaml`` and the portal's entries.

Pure where it can be: ``Answers`` → configuration text (``render_config``) and → what to enter
in the Tradecloud portal (``portal_entries``); writing the file is the one step with I/O. The
configuration holds the generated secret, so it is written 0600 and never over an existing file
unless asked.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from tcwebhook.datadir import write_private
from tcwebhook.errors import ConfigError, UsageError

DEFAULT_PATHS = {"order": "/tradecloud/order", "shipment": "/tradecloud/shipment"}
PROXY_PORT = 8080  # where serve listens behind a local TLS-terminating proxy
TOKEN_BYTES = 32  # 256 bits; URL-safe base64 gives 43 characters


class AuthKind(StrEnum):
    BEARER = "bearer"
    BASIC = "basic"
    ENTRA = "entra"


class Tls(StrEnum):
    FILES = "files"  # serve terminates TLS with the customer's certificate
    PROXY = "proxy"  # a reverse proxy on this machine terminates TLS
    DEVELOPMENT = "development"  # the generated development CA: local tests only


class Method(StrEnum):
    POST = "POST"
    GET = "GET"


class DeliveryMode(StrEnum):
    SCHEDULE = "delivery-schedule"
    SINGLE = "single-delivery"


@dataclass(frozen=True)
class Entra:
    tenant: str
    audiences: tuple[str, ...]
    client_ids: tuple[str, ...]


@dataclass(frozen=True)
class Answers:
    """What ``init`` asks; the defaults are its defaults."""

    public_url: str
    auth: AuthKind = AuthKind.BEARER
    tls: Tls = Tls.FILES
    cert: Path | None = None
    key: Path | None = None
    port: int | None = None  # None: the public URL's port (files) or PROXY_PORT (proxy)
    orders: Method | None = Method.POST  # None: no order webhook
    documents: bool = True
    shipments: Method | None = Method.POST
    delivery_mode: DeliveryMode = DeliveryMode.SCHEDULE
    username: str = "tradecloud"
    entra: Entra | None = None
    # The generated secrets; made here so that the file and the printed guide agree.
    token: str = field(default_factory=lambda: generate_secret(), repr=False)
    password: str = field(default_factory=lambda: generate_secret(), repr=False)

    def __post_init__(self) -> None:
        check_public_url(self.public_url)
        if self.tls is Tls.FILES and (self.cert is None or self.key is None):
            raise UsageError(
                "with your own certificate give both --cert and --key (PEM files), "
                "or choose --tls proxy or --tls development"
            )
        if self.auth is AuthKind.ENTRA and self.entra is None:
            raise UsageError(
                "Entra needs --entra-tenant, --entra-audience and --entra-client-id "
                "(your app registration and Tradecloud's client id)"
            )
        if self.orders is Method.GET and self.delivery_mode is DeliveryMode.SINGLE:
            raise UsageError(
                "a GET order webhook cannot use single-delivery mode (Tradecloud sends only the "
                "order id): choose POST or --delivery-mode delivery-schedule"
            )
        if self.orders is None and not self.documents and self.shipments is None:
            raise UsageError("choose at least one webhook: orders, order documents or shipments")

    @property
    def base(self) -> str:
        """The public URL without a trailing slash: the paths are appended to it."""
        return self.public_url.rstrip("/")

    @property
    def path_prefix(self) -> str:
        return urlsplit(self.base).path

    @property
    def listen_port(self) -> int:
        if self.port is not None:
            return self.port
        if self.tls is Tls.PROXY:
            return PROXY_PORT
        if self.tls is Tls.DEVELOPMENT:
            return 8443
        return urlsplit(self.base).port or 443


def generate_secret() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def check_public_url(url: str) -> None:
    """Tradecloud accepts only an https:// URL, without query or fragment (ours to add)."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise UsageError(
            f"the public URL must start with https:// and name a host (got {url!r}); "
            "Tradecloud delivers only over HTTPS"
        )
    if parts.query or parts.fragment or "{" in url:
        raise UsageError(
            f"give the public URL without query, fragment or placeholder (got {url!r}); "
            "tcwebhook adds the paths and the GET placeholders itself"
        )


# ---- the configuration file ------------------------------------------------------------------


def settings_tree(answers: Answers) -> dict[str, object]:
    """The configuration as nested mappings, with only what differs from the defaults."""
    prefix = answers.path_prefix.rstrip("/")
    server: dict[str, object] = {
        "paths": {name: prefix + path for name, path in DEFAULT_PATHS.items()},
    }
    if answers.tls is Tls.FILES:
        server.update(host="0.0.0.0", port=answers.listen_port)
        server["tls"] = {"cert": str(answers.cert), "key": str(answers.key)}
    elif answers.tls is Tls.PROXY:
        server.update(host="127.0.0.1", port=answers.listen_port, tls=False)
        server["proxy"] = {"trusted": ["127.0.0.1", "::1"]}
    else:
        server.update(host="127.0.0.1", port=answers.listen_port)
    tree: dict[str, object] = {"data_dir": "./.tcwebhook", "server": server}
    tree["auth"] = _static_auth(answers)
    if answers.auth is AuthKind.ENTRA:
        # Tradecloud offers Entra only for the order webhooks: shipments keep the bearer token.
        assert answers.entra is not None
        paths = server["paths"]
        assert isinstance(paths, dict)
        paths["order_auth"] = {
            "type": "entra",
            "tenant": answers.entra.tenant,
            "audiences": list(answers.entra.audiences),
            "client_ids": list(answers.entra.client_ids),
        }
    tree["reconcile"] = {
        "orders": answers.orders is not None,
        "shipments": answers.shipments is not None,
        "delivery_mode": answers.delivery_mode.value,
    }
    return tree


def _static_auth(answers: Answers) -> dict[str, str]:
    if answers.auth is AuthKind.BASIC:
        return {"type": "basic", "username": answers.username, "password": answers.password}
    return {"type": "bearer", "token": answers.token}


def render_config(answers: Answers) -> str:
    header = (
        "# Written by `tcwebhook init`. It holds the webhook's secret: keep it mode 0600 and out\n"
        "# of version control. Every key is documented in docs/configuration.md.\n"
    )
    body = yaml.safe_dump(settings_tree(answers), sort_keys=False, default_flow_style=False)
    return header + body


def write_config(path: Path, text: str, force: bool) -> None:
    """Write the configuration 0600; an existing file only with ``force``."""
    if path.is_dir():
        raise UsageError(f"{path} is a folder: give --config a file name")
    if path.exists() and not force:
        raise UsageError(
            f"{path} exists already: pass --force to replace it, or --config OTHER.yaml"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, text.encode())  # 0600 from its first byte
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None


# ---- what to enter in the Tradecloud portal --------------------------------------------------


@dataclass(frozen=True)
class PortalEntry:
    """One webhook integration as the portal asks for it (docs/tradecloud.md)."""

    integration: str  # Orders, Order documents, Shipments
    method: str
    url: str
    authentication: str  # how, never the secret itself
    format: str | None  # JSON (orders only have a choice)
    delivery_mode: str | None  # the orders' "My system supports" answer

    def to_json(self) -> dict[str, object]:
        return {
            "integration": self.integration,
            "method": self.method,
            "url": self.url,
            "authentication": self.authentication,
            "format": self.format,
            "delivery_mode": self.delivery_mode,
        }


DELIVERY_MODE_TEXT = {
    DeliveryMode.SCHEDULE: "multiple delivery lines per order line",
    DeliveryMode.SINGLE: "only one delivery line per order line",
}


def portal_entries(answers: Answers) -> list[PortalEntry]:
    order_url = answers.base + DEFAULT_PATHS["order"]
    shipment_url = answers.base + DEFAULT_PATHS["shipment"]
    entries = []
    if answers.orders is not None:
        get = answers.orders is Method.GET
        entries.append(
            PortalEntry(
                "Orders",
                answers.orders.value,
                order_url + "/{orderId}" if get else order_url,
                _authentication(answers, entra_allowed=True),
                "JSON",
                None if get else DELIVERY_MODE_TEXT[answers.delivery_mode],
            )
        )
    if answers.documents:
        entries.append(
            PortalEntry(
                "Order documents",
                "POST",
                order_url,
                _authentication(answers, entra_allowed=True),
                None,
                None,
            )
        )
    if answers.shipments is not None:
        get = answers.shipments is Method.GET
        entries.append(
            PortalEntry(
                "Shipments",
                answers.shipments.value,
                shipment_url + "/{shipmentId}" if get else shipment_url,
                _authentication(answers, entra_allowed=False),
                None,
                None,
            )
        )
    return entries


def _authentication(answers: Answers, entra_allowed: bool) -> str:
    if answers.auth is AuthKind.ENTRA and entra_allowed:
        assert answers.entra is not None
        return (
            "OAuth 2.0 (Microsoft Entra ID): token URL "
            f"https://login.microsoftonline.com/{answers.entra.tenant}/oauth2/v2.0/token, "
            "the client id and secret you registered for Tradecloud, scope "
            f"{answers.entra.audiences[0]}/.default"
        )
    if answers.auth is AuthKind.BASIC:
        return f"Basic: user name {answers.username!r} and the generated password (auth.password)"
    return "Bearer token: the generated token (auth.token in the configuration file)"


def secret_label(answers: Answers) -> str:
    """What the generated secret is, for the line that shows it once."""
    if answers.auth is AuthKind.BASIC:
        return "Basic password"
    if answers.auth is AuthKind.ENTRA:
        return "Bearer token (shipments)"
    return "Bearer token"


def secret_key(answers: Answers) -> str:
    """Where the secret is in the configuration file."""
    return "auth.password" if answers.auth is AuthKind.BASIC else "auth.token"


def secret(answers: Answers) -> str:
    return answers.password if answers.auth is AuthKind.BASIC else answers.token
