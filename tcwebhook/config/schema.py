"""The settings' schema: frozen dataclasses and the checks each makes of itself.

A key is valid exactly when a field of that name exists, so a later feature adds a key by adding
a field (and a line in docs/configuration.md). Field metadata (``bounds``, ``web_url``) is applied
by the loader, which can name where a value was set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tcwebhook.datadir import default_store_url
from tcwebhook.errors import ConfigError
from tcwebhook.protocol import EventKind

API_BASE_URLS = {
    "acceptance": "https://api.accp.tradecloud1.com/v2",
    "production": "https://api.tradecloud1.com/v2",
}


def bounds(
    low: float | None = None, high: float | None = None, *, above: float | None = None
) -> dict[str, Any]:
    """Field metadata: the loader rejects a value below ``low``, above ``high`` or not above
    ``above``, naming the key (or flag) and where it was set. Use as
    ``port: int = field(default=8443, metadata=bounds(0, 65535))``."""
    return {"bounds": (low, high, above)}


def web_url(*schemes: str) -> dict[str, Any]:
    """Field metadata: the value must be a valid URL with one of these schemes."""
    return {"url": schemes}


@dataclass(frozen=True)
class TlsFiles:
    cert: Path | None = None
    key: Path | None = None
    # false only behind a TLS-terminating proxy (``server.tls: false``; see ProxySettings)
    enabled: bool = True

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise ConfigError(
                "server.tls needs both 'cert' and 'key' (or neither, for the development CA)"
            )


@dataclass(frozen=True)
class Paths:
    order: str = "/tradecloud/order"
    shipment: str = "/tradecloud/shipment"
    # Per-path authentication; None: the top-level ``auth``. Tradecloud offers Entra OAuth for
    # the order webhooks only, so the shipment path often needs its own Basic or Bearer.
    order_auth: AuthSettings | None = None
    shipment_auth: AuthSettings | None = None

    def __post_init__(self) -> None:
        for name in ("order", "shipment"):
            value = getattr(self, name)
            if not value.startswith("/") or value.endswith("/") or "{" in value:
                raise ConfigError(
                    f"server.paths.{name} must start with '/', not end with '/' and hold no "
                    f"placeholder (got {value!r})"
                )
        if self.order == self.shipment:
            raise ConfigError("server.paths.order and server.paths.shipment must differ")


# ---- server.limits: what a slow, idle or hostile client and an odd payload may cost ----------


@dataclass(frozen=True)
class ServerLimits:
    """Timeouts (seconds) and limits of the receiver; README "How it behaves under failure"."""

    head_timeout: float = 10.0  # connect (TLS handshake included) to a complete request head
    idle_timeout: float = 30.0  # a keep-alive connection waiting for its next request
    body_timeout: float = 30.0  # reading one request body
    max_connections: int = 1000  # lowered to fit the open-file limit; beyond it: refused
    max_json_depth: int = 64  # nesting of objects and arrays in a body
    max_id_length: int = 256  # characters in eventName, messageId, ids, numbers, line keys

    def __post_init__(self) -> None:
        for name in ("head_timeout", "idle_timeout", "body_timeout"):
            value = getattr(self, name)
            if not 0 < value <= 3600:  # also false for NaN
                raise ConfigError(
                    f"server.limits.{name} must be between 0 and 3600 seconds (got {value})"
                )
        for name, least in (("max_connections", 1), ("max_json_depth", 8), ("max_id_length", 64)):
            if getattr(self, name) < least:
                raise ConfigError(f"server.limits.{name} must be at least {least}")


# ---- end of server.limits ------------------------------------------------------------------


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = field(default=8443, metadata=bounds(0, 65535))
    tls: TlsFiles = field(default_factory=TlsFiles)
    max_body_bytes: int = field(default=10 * 1024 * 1024, metadata=bounds(1024))
    paths: Paths = field(default_factory=Paths)
    unix_socket: Path | None = None  # listen here instead of host:port (behind a local proxy)
    proxy: ProxySettings = field(default_factory=lambda: ProxySettings())
    allow_from: tuple[str, ...] = ()  # client networks; empty: any client
    limits: ServerLimits = field(default_factory=ServerLimits)

    def __post_init__(self) -> None:
        _check_networks("server.allow_from", self.allow_from)


ENTRA_TOKEN_VERSIONS = ("1.0", "2.0")


@dataclass(frozen=True)
class AuthSettings:
    type: Literal["bearer", "basic", "entra"] = "bearer"
    token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    # entra: access tokens from Microsoft Entra ID (OAuth client credentials,
    # docs/tradecloud.md#webhook-authentication)
    tenant: str | None = None  # directory (tenant) id
    audiences: tuple[str, ...] = ()  # accepted ``aud`` values
    client_ids: tuple[str, ...] = ()  # accepted ``azp`` (v2) / ``appid`` (v1): Tradecloud's app
    token_versions: tuple[str, ...] = ENTRA_TOKEN_VERSIONS
    roles: tuple[str, ...] = ()  # if set, the token must carry at least one of them
    openid_config_url: str | None = None  # default: the tenant's v2.0 OpenID configuration
    ca_file: Path | None = None  # a private CA for that server

    @property
    def configured(self) -> bool:
        if self.type == "bearer":
            return bool(self.token)
        if self.type == "entra":
            return bool(self.tenant and self.audiences and self.client_ids)
        return bool(self.username and self.password)

    def __post_init__(self) -> None:
        if self.type == "basic" and not (self.username and self.password):
            raise ConfigError("auth.type 'basic' needs both auth.username and auth.password")
        if self.type == "entra":
            _check_entra(self)
        if self.username and ":" in self.username:
            raise ConfigError("auth.username must not contain ':' (HTTP Basic cannot carry it)")


def _check_entra(auth: AuthSettings) -> None:
    missing = [name for name in ("tenant", "audiences", "client_ids") if not getattr(auth, name)]
    if missing:
        raise ConfigError(
            f"auth.type 'entra' needs {', '.join('auth.' + name for name in missing)}: the "
            "tenant id, the accepted token audiences and Tradecloud's client id"
        )
    unknown = [version for version in auth.token_versions if version not in ENTRA_TOKEN_VERSIONS]
    if unknown or not auth.token_versions:
        raise ConfigError(
            f"auth.token_versions must list 1.0 and/or 2.0 (got {list(auth.token_versions)})"
        )
    url = auth.openid_config_url
    if url is not None and not url.startswith("https://"):
        raise ConfigError("auth.openid_config_url must start with https://")


def _check_networks(key: str, networks: tuple[str, ...]) -> None:
    import ipaddress

    for network in networks:
        if network == "unix":
            continue
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ConfigError(
                f"{key}: {network!r} is not an IP address or network (e.g. 10.0.0.0/8)"
            ) from None


@dataclass(frozen=True)
class ProxySettings:
    """The reverse proxies whose X-Forwarded-For / Forwarded headers are believed."""

    trusted: tuple[str, ...] = ()  # addresses or networks; "unix": whoever uses server.unix_socket

    def __post_init__(self) -> None:
        _check_networks("server.proxy.trusted", self.trusted)


@dataclass(frozen=True)
class MetricsSettings:
    """Prometheus metrics on a listener of their own, never on the Tradecloud-facing port."""

    listen: str | None = None  # HOST:PORT, e.g. 127.0.0.1:9464; None: no metrics

    @property
    def address(self) -> tuple[str, int] | None:
        if not self.listen:
            return None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)

    def __post_init__(self) -> None:
        if not self.listen:
            return
        host, _, port = self.listen.rpartition(":")
        if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ConfigError(
                f"metrics.listen must be HOST:PORT, e.g. 127.0.0.1:9464 (got {self.listen!r})"
            )


@dataclass(frozen=True)
class StoreSettings:
    # None: SQLite in the data directory. Not in a repr: a PostgreSQL URL may hold a password.
    url: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class RetrySettings:
    max_attempts: int = field(default=25, metadata=bounds(1))
    # seconds; back-off doubles from base_delay up to max_delay
    max_delay: float = field(default=1800.0, metadata=bounds(above=0))
    base_delay: float = field(default=1.0, metadata=bounds(above=0))

    def __post_init__(self) -> None:
        if self.max_delay < self.base_delay:
            raise ConfigError("retry needs base_delay <= max_delay")


@dataclass(frozen=True)
class TradecloudSettings:
    environment: Literal["acceptance", "production"] = "acceptance"
    base_url: str | None = field(default=None, metadata=web_url("https", "http"))
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    # Back-off of the fetch-through job of GET webhooks: an API outage is retried longer than
    # a sink's default, but sooner between tries (the API is usually back within minutes).
    fetch_retry: RetrySettings = field(
        default_factory=lambda: RetrySettings(max_attempts=40, max_delay=900.0)
    )

    @property
    def api_base_url(self) -> str:
        return (self.base_url or API_BASE_URLS[self.environment]).rstrip("/")


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


@dataclass(frozen=True)
class SinkSettings:
    """Where stored events are handed on to: a directory, a command or an HTTP endpoint."""

    name: str
    type: Literal["directory", "command", "http"]
    events: tuple[str, ...] = ()  # eventName globs; empty: every event
    kinds: tuple[EventKind, ...] = ()  # empty: every kind
    content: Literal["payload", "envelope"] = "payload"
    path: Path | None = None  # directory
    run: tuple[str, ...] = ()  # command: program and arguments
    url: str | None = field(default=None, metadata=web_url("https", "http"))
    headers: dict[str, str] = field(default_factory=dict, repr=False)  # http
    ca_file: Path | None = None  # http: extra CA to trust
    env: dict[str, str] = field(default_factory=dict, repr=False)  # command: variables to set
    pass_env: tuple[str, ...] = ()  # command: variables passed on from tcwebhook's environment
    timeout: float = field(default=30.0, metadata=bounds(above=0))
    concurrency: int = field(default=1, metadata=bounds(1))  # 1 keeps events strictly in order
    retry: RetrySettings = field(default_factory=RetrySettings)

    def __post_init__(self) -> None:
        if not self.name or self.name.startswith("@"):
            raise ConfigError("a sink needs a name that does not start with '@'")
        required = {
            "directory": ("path", self.path),
            "command": ("run", self.run),
            "http": ("url", self.url),
        }
        key, value = required[self.type]
        if not value:
            raise ConfigError(f"sink '{self.name}' of type {self.type} needs '{key}'")
        for name, value in self.headers.items():
            if not _HEADER_NAME.fullmatch(name) or any(c in value for c in "\r\n\x00"):
                raise ConfigError(
                    f"sink '{self.name}': header {name!r} is not a valid HTTP header "
                    "(a name of letters, digits and -, a value without line breaks)"
                )


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float | None:
    """Seconds in ``90``, ``90s``, ``15m``, ``2h`` or ``1d``; None when unreadable."""
    match = _DURATION.match(text)
    if match is None:
        return None
    return float(match.group(1)) * _DURATION_UNITS[match.group(2) or "s"]


@dataclass(frozen=True)
class ReconcileSettings:
    """``tcwebhook reconcile`` and its timer in ``serve`` (off unless ``every`` is set)."""

    every: str | None = None  # e.g. 15m; empty or "off": serve does not reconcile
    orders: bool = True
    shipments: bool = True
    # The order webhook's delivery mode in the portal: which order poll endpoint to use.
    delivery_mode: Literal["delivery-schedule", "single-delivery"] = "delivery-schedule"

    def __post_init__(self) -> None:
        if self.every is not None and self.every.strip().lower() not in ("", "off"):
            seconds = parse_duration(self.every)
            if seconds is None or seconds < 60:
                raise ConfigError(
                    f"reconcile.every must be a duration of at least 1 minute, like 15m or 1h "
                    f"(got {self.every!r}); leave it empty to switch the timer off"
                )

    @property
    def interval_seconds(self) -> float | None:
        """Seconds between runs in ``serve``; None when the timer is off."""
        if self.every is None or self.every.strip().lower() in ("", "off"):
            return None
        return parse_duration(self.every)


@dataclass(frozen=True)
class RequestsSettings:
    """The request log's bounds (docs/requests.md#limits): what a flood of refused requests
    may cost in writes and rows, whatever arrives."""

    enabled: bool = True
    keep: int = field(default=10_000, metadata=bounds(1, 10_000_000))  # rows kept
    max_age: str = "7d"  # rows last seen longer ago are deleted
    window: float = field(default=60.0, metadata=bounds(above=0))  # seconds: identical -> one row
    rate: float = field(default=5.0, metadata=bounds(above=0))  # writes per second, sustained
    burst: int = field(default=20, metadata=bounds(1, 100_000))
    max_groups: int = field(default=1000, metadata=bounds(1, 1_000_000))

    def __post_init__(self) -> None:
        seconds = parse_duration(self.max_age)
        if seconds is None or seconds < 60:
            raise ConfigError(
                f"requests.max_age must be a duration of at least 1 minute, like 7d or 12h "
                f"(got {self.max_age!r})"
            )

    @property
    def max_age_seconds(self) -> float:
        return parse_duration(self.max_age) or 7 * 86400.0


@dataclass(frozen=True)
class InspectorSettings:
    """The local web page that shows stored events (``serve`` starts it; ``inspect`` alone)."""

    enabled: bool = True
    listen: str = "127.0.0.1:4041"  # not 4040: an ngrok tunnel in front of serve takes that
    tls: TlsFiles = field(default_factory=TlsFiles)
    username: str | None = None  # HTTP Basic; required (with tls) off loopback
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        split_listen(self.listen, "inspector.listen")  # fail at load time, naming the key
        if bool(self.username) != bool(self.password):
            raise ConfigError("inspector.username and inspector.password go together")
        if self.username and ":" in self.username:
            raise ConfigError("inspector.username must not contain ':'")

    @property
    def host(self) -> str:
        return split_listen(self.listen, "inspector.listen")[0]

    @property
    def port(self) -> int:
        return split_listen(self.listen, "inspector.listen")[1]


def split_listen(value: str, what: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:4041`` for IPv6) as its parts; a ConfigError naming ``what``."""
    host, separator, port = value.strip().rpartition(":")
    host = host.strip("[]")
    if not separator or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(
            f"{what} must be HOST:PORT, e.g. 127.0.0.1:4041 or [::1]:4041 (got {value!r})"
        )
    return host, int(port)


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=lambda: default_data_dir())
    server: ServerSettings = field(default_factory=ServerSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    tradecloud: TradecloudSettings = field(default_factory=TradecloudSettings)
    sinks: tuple[SinkSettings, ...] = ()
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    reconcile: ReconcileSettings = field(default_factory=ReconcileSettings)
    inspector: InspectorSettings = field(default_factory=InspectorSettings)
    requests: RequestsSettings = field(default_factory=RequestsSettings)
    source: Path | None = None  # the file the settings came from, for messages

    def __post_init__(self) -> None:
        names = [sink.name for sink in self.sinks]
        if len(set(names)) != len(names):
            raise ConfigError("sinks: every sink needs a different name")
        address = self.metrics.address
        if address is not None and address[1] == self.server.port and address[1] != 0:
            raise ConfigError(
                "metrics.listen must use another port than server.port: metrics are never "
                "served on the Tradecloud-facing port"
            )

    @property
    def store_url(self) -> str:
        return self.store.url or default_store_url(self.data_dir)


def default_data_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("tcwebhook", appauthor=False))
