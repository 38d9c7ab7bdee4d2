"""Frozen, validated settings.

``load_settings`` merges four layers, each overriding the one before: defaults, the YAML file,
environment variables, command-line flags. The schema is the dataclasses below: a key is valid
exactly when a field of that name exists, so a later feature adds a key by adding a field.

Environment variables follow the dotted key: ``server.port`` is ``TCWEBHOOK_SERVER_PORT``,
``data_dir`` is ``TCWEBHOOK_DATA_DIR``. Any string in the file may use ``${VAR}`` or
``${VAR:-default}`` so that secrets stay out of the file.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import os
import re
import types
import typing
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from tcwebhook.datadir import default_store_url
from tcwebhook.errors import ConfigError
from tcwebhook.protocol import EventKind
from tcwebhook.urls import parse_url

ENV_PREFIX = "TCWEBHOOK_"
CONFIG_ENV = "TCWEBHOOK_CONFIG"
DEFAULT_CONFIG_NAME = "tcwebhook.yaml"

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


# --------------------------------------------------------------------------------------------
# Loading

# A config file is a handful of keys: bounds that stop alias bombs and runaway nesting early.
MAX_YAML_NODES = 10_000
MAX_YAML_DEPTH = 64


def find_config_file(explicit: Path | None, environ: Mapping[str, str]) -> Path | None:
    """The file named by --config, else $TCWEBHOOK_CONFIG, else ./tcwebhook.yaml if present."""
    if explicit is not None:
        return explicit
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV])
    local = Path(DEFAULT_CONFIG_NAME)
    return local if local.is_file() else None


@dataclass
class _Origins:
    """Where each dotted key's value came from, for messages and for resolving relative paths."""

    where: str  # the file, or "settings" without one
    base_dir: Path  # relative paths in the file resolve against its folder
    marks: dict[str, str] = field(default_factory=dict)  # key -> "file:line"
    outside: dict[str, str] = field(default_factory=dict)  # key -> "--flag" or "TCWEBHOOK_..."
    quoted_text: set[str] = field(default_factory=set)  # keys given as quoted text in the file
    scalar_text: dict[str, str] = field(default_factory=dict)  # key -> a non-text scalar as written

    def label(self, dotted: str) -> str:
        """How to name a key to the user: the flag or variable that set it, else the key."""
        return self.outside.get(dotted, dotted)

    def fail(self, dotted: str, problem: str) -> ConfigError:
        """``file:line: key problem``, or ``--flag problem`` when a flag set the key."""
        return self.located(dotted, f"{self.label(dotted)} {problem}")

    def located(self, dotted: str, message: str) -> ConfigError:
        if dotted in self.outside:
            return ConfigError(message)
        return ConfigError(f"{self.marks.get(dotted, self.where)}: {message}")

    def at(self, dotted: str) -> str:
        return self.outside.get(dotted) or self.marks.get(dotted, self.where)

    def base_for(self, dotted: str) -> Path:
        # Flags and environment variables are typed in a shell: relative to its working directory.
        return Path.cwd() if dotted in self.outside else self.base_dir


def load_settings(
    config_file: Path | None = None,
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    sections: Collection[str] | None = None,
) -> Settings:
    """Build settings from defaults < file < environment < flags (dotted keys in ``flags``).

    A relative path in the file is relative to the file's folder; one given by a flag or an
    environment variable is relative to the working directory.

    ``sections``: the top-level keys a command uses (e.g. a read-only command needs only
    ``data_dir`` and ``store``); the file's other sections are skipped, so their ``${VAR}``s
    need not be set. None: all of them.
    """
    environ = os.environ if environ is None else environ
    path = find_config_file(config_file, environ)
    origins = _Origins(f"{path}" if path else "settings", Path.cwd())
    raw: dict[str, Any] = {}
    if path is not None:
        raw = _read_yaml(path, environ, origins, sections)
        origins.base_dir = path.resolve().parent
    for dotted, value in _environment_layer(environ).items():
        if sections is not None and dotted.split(".")[0] not in sections:
            continue
        _set_dotted(raw, dotted, value)
        origins.outside[dotted] = ENV_PREFIX + dotted.replace(".", "_").upper()
        origins.quoted_text.discard(dotted)
        origins.scalar_text.pop(dotted, None)
    for dotted, value in (flags or {}).items():
        if value is not None:
            _set_dotted(raw, dotted, value)
            origins.outside[dotted] = flag_name(dotted)
            origins.quoted_text.discard(dotted)
            origins.scalar_text.pop(dotted, None)
    settings = _build(Settings, raw, "", origins)
    return dataclasses.replace(
        settings, source=path, store=_resolve_store(settings.store, origins.base_for("store.url"))
    )


def flag_name(dotted: str) -> str:
    """The command-line flag that sets a key: ``server.port`` → ``--port``."""
    return "--" + dotted.rsplit(".", 1)[-1].replace("_", "-")


def _resolve_store(store: StoreSettings, base_dir: Path) -> StoreSettings:
    """A relative sqlite path is relative to where it was written, like every other path."""
    prefix = "sqlite:///"
    if store.url and store.url.startswith(prefix):
        path = Path(store.url[len(prefix) :]).expanduser()
        if not path.is_absolute():
            return StoreSettings(url=prefix + str(base_dir / path))
    return store


def _read_yaml(
    path: Path,
    environ: Mapping[str, str],
    origins: _Origins,
    sections: Collection[str] | None = None,
) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory; give a YAML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        node = yaml.compose(text, Loader=_BoundedLoader)
        if node is None:
            return {}
        if sections is not None and isinstance(node, yaml.MappingNode):
            known = {f.name for f in dataclasses.fields(Settings)}
            node.value = [  # an unknown key is kept, so that it is still reported
                (key, value)
                for key, value in node.value
                if str(key.value) in sections or str(key.value) not in known
            ]
        value = _Constructor(path, environ, origins).construct(node, "", 0)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        position = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}{position}: invalid YAML: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid YAML: nested too deeply") from None
    if not isinstance(value, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of keys (data_dir, server, ...)"
        )
    return value


class _BoundedLoader(yaml.SafeLoader):
    """Stops composing at MAX_YAML_DEPTH levels, long before Python's recursion limit (which
    PyYAML would reach, slowly, at about 300 levels)."""

    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(
                    None, None, f"nested more than {MAX_YAML_DEPTH} levels deep", mark
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _Constructor:
    """Turn YAML nodes into Python values, remembering where each key stands in the file.

    Unlike ``yaml.safe_load`` it refuses duplicate keys, aliases that contain themselves and
    alias bombs, and it keeps the text of scalars so that ``password: 0123`` stays "0123".
    """

    def __init__(self, path: Path, environ: Mapping[str, str], origins: _Origins) -> None:
        self.path = path
        self.environ = environ
        self.origins = origins
        self.loader = yaml.SafeLoader("")
        self.nodes = 0
        self.active: set[int] = set()  # collection nodes being built: a repeat is a cycle

    def construct(self, node: yaml.Node, dotted: str, depth: int) -> Any:
        position = f"{self.path}:{node.start_mark.line + 1}"
        if dotted:
            self.origins.marks[dotted] = position
        self.nodes += 1
        if self.nodes > MAX_YAML_NODES:
            raise ConfigError(f"{position}: the file expands to more than {MAX_YAML_NODES} values")
        if depth > MAX_YAML_DEPTH:
            raise ConfigError(f"{position}: nested more than {MAX_YAML_DEPTH} levels deep")
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, dotted, position)
        if id(node) in self.active:
            raise ConfigError(f"{position}: {dotted or 'the file'} refers to itself (an alias)")
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, dotted, depth)
            return [
                self.construct(item, f"{dotted}[{index}]", depth + 1)
                for index, item in enumerate(node.value)
            ]
        finally:
            self.active.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, dotted: str, depth: int) -> dict[str, Any]:
        self.loader.flatten_mapping(node)  # "<<: *defaults" merge keys
        result: dict[str, Any] = {}
        lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(f"{self.path}:{line}: a key must be a plain name")
            key = str(key_node.value)
            if key in lines:
                raise ConfigError(
                    f"{self.path}:{line}: duplicate key '{key}' (first on line {lines[key]})"
                )
            lines[key] = line
            child = f"{dotted}.{key}" if dotted else key
            result[key] = self.construct(value_node, child, depth + 1)
        return result

    def _scalar(self, node: yaml.ScalarNode, dotted: str, position: str) -> Any:
        value = self.loader.construct_object(node, deep=True)
        if not isinstance(value, str):
            if value is not None:
                self.origins.scalar_text[dotted] = str(node.value)
            return value
        if node.style in ("'", '"') and _VAR.search(value) is None:
            self.origins.quoted_text.add(dotted)
        value = interpolate(value, self.environ, f"{position}: {dotted}")
        if value == "" and node.style is None:
            return None  # "${UNSET:-}" means "not set", like an empty YAML value
        return value


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate(text: str, environ: Mapping[str, str], where: str) -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}``; a missing VAR without default is an error."""

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if environ.get(name):
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(
            f"{where} refers to ${{{name}}}, which is not set: export {name}=... "
            f"or write ${{{name}:-default}}"
        )

    return _VAR.sub(replace, text)


def _environment_layer(environ: Mapping[str, str]) -> dict[str, str]:
    """TCWEBHOOK_SERVER_PORT=9000 → {"server.port": "9000"}, for every key of the schema."""
    result = {}
    for dotted in _all_keys(Settings):
        name = ENV_PREFIX + dotted.replace(".", "_").upper()
        if name in environ and name != CONFIG_ENV:
            result[dotted] = environ[name]
    return result


def _all_keys(cls: type, prefix: str = "") -> list[str]:
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name == "source":
            continue
        dotted = prefix + f.name
        target = _dataclass_of(hints[f.name])
        keys.extend(_all_keys(target, dotted + ".") if target else [dotted])
    return keys


def _set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = raw
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[last] = value


def _dataclass_of(hint: Any) -> type | None:
    """The dataclass behind ``X`` or ``X | None``."""
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType)
    for candidate in (hint, *(typing.get_args(hint) if optional else ())):
        if isinstance(candidate, type) and dataclasses.is_dataclass(candidate):
            return candidate
    return None


def _build(cls: type, raw: Any, prefix: str, origins: _Origins) -> Any:
    section = prefix.rstrip(".")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise origins.fail(section, "must be a mapping of keys")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
    for key in raw:
        if key not in fields:
            dotted = prefix + str(key)
            choices = ", ".join(sorted(fields))
            raise ConfigError(f"{origins.at(dotted)}: unknown key '{dotted}' (valid: {choices})")
    for name, f in fields.items():
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required and raw.get(name) is None:
            raise origins.fail(section, f"needs '{name}'")
    values = {}
    for key, value in raw.items():
        dotted = prefix + key
        values[key] = _convert(hints[key], value, dotted, origins)
        _check_range(fields[key], values[key], dotted, origins)
        _check_url(fields[key], values[key], dotted, origins)
    try:
        return cls(**values)
    except ConfigError as exc:
        raise ConfigError(f"{origins.at(section)}: {exc}") from None


def _convert(hint: Any, value: Any, dotted: str, origins: _Origins) -> Any:
    target = _dataclass_of(hint)
    if target is not None:
        if isinstance(value, bool) and "enabled" in {f.name for f in dataclasses.fields(target)}:
            value = {"enabled": value}  # ``server.tls: false`` switches a section off
        return _build(target, value, dotted + ".", origins)
    args = typing.get_args(hint)
    optional = type(None) in args and (typing.get_origin(hint) in (typing.Union, types.UnionType))
    if value is None:
        if optional:
            return None
        raise origins.fail(dotted, "must not be empty")
    if optional:
        hint = next(a for a in args if a is not type(None))
    origin = typing.get_origin(hint)
    if origin in (tuple, list):
        if not isinstance(value, list):
            raise origins.fail(dotted, "must be a list")
        item = typing.get_args(hint)[0]
        return tuple(
            _convert(item, element, f"{dotted}[{index}]", origins)
            for index, element in enumerate(value)
        )
    if origin is dict:
        if not isinstance(value, dict):
            raise origins.fail(dotted, "must be a mapping")
        item = typing.get_args(hint)[1]
        return {
            str(key): _convert(item, element, f"{dotted}.{key}", origins)
            for key, element in value.items()
        }
    if origin is Literal:
        return _choice(typing.get_args(hint), value, dotted, origins)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(_choice(tuple(member.value for member in hint), value, dotted, origins))
    converter = _SCALARS.get(hint)
    return converter(value, dotted, origins) if converter else value


def _choice(choices: tuple[Any, ...], value: Any, dotted: str, origins: _Origins) -> Any:
    if isinstance(value, str) and value in choices:
        return value
    shown = origins.scalar_text.get(dotted, value)
    raise origins.fail(dotted, f"must be one of {', '.join(choices)} (got {shown!r})")


def _not_quoted_in_file(kind: str, value: Any, dotted: str, origins: _Origins) -> None:
    # Environment variables and ${VAR} can only be text; quotes typed in the file say "text",
    # so "false" for a switch or "30" for a number is a mistake worth a word.
    if isinstance(value, str) and dotted in origins.quoted_text:
        raise origins.fail(dotted, f"must be {kind}, written without quotes (got {value!r})")


def _to_int(value: Any, dotted: str, origins: _Origins) -> int:
    _not_quoted_in_file("a whole number", value, dotted, origins)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    shown = origins.scalar_text.get(dotted, value)
    raise origins.fail(dotted, f"must be a whole number (got {shown!r})")


def _to_float(value: Any, dotted: str, origins: _Origins) -> float:
    _not_quoted_in_file("a number", value, dotted, origins)
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        shown = origins.scalar_text.get(dotted, value)
        raise origins.fail(dotted, f"must be a finite number (got {shown!r})")
    return number


_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def _to_bool(value: Any, dotted: str, origins: _Origins) -> bool:
    _not_quoted_in_file("true or false", value, dotted, origins)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise origins.fail(dotted, f"must be true or false (got {value!r})")


def _to_path(value: Any, dotted: str, origins: _Origins) -> Path:
    if not isinstance(value, str | Path) or "\x00" in str(value):
        raise origins.fail(dotted, "must be a file path")
    path = Path(value).expanduser()
    return path if path.is_absolute() else origins.base_for(dotted) / path


def _to_str(value: Any, dotted: str, origins: _Origins) -> str:
    if isinstance(value, dict | list):
        raise origins.fail(dotted, "must be a text value")
    if "\x00" in str(value):
        raise origins.fail(dotted, "must not hold a NUL character")
    # A number or date written in the file stays as written: "password: 0123" is "0123".
    return origins.scalar_text.get(dotted, str(value)) if not isinstance(value, str) else value


_SCALARS: dict[Any, Callable[[Any, str, _Origins], Any]] = {
    int: _to_int,
    float: _to_float,
    bool: _to_bool,
    Path: _to_path,
    str: _to_str,
}


def _check_range(f: dataclasses.Field[Any], value: Any, dotted: str, origins: _Origins) -> None:
    """Apply a field's ``bounds(...)`` metadata."""
    limits = f.metadata.get("bounds")
    if limits is None or value is None:
        return
    low, high, above = limits
    too_low = (low is not None and value < low) or (above is not None and value <= above)
    if too_low or (high is not None and value > high):
        raise origins.fail(dotted, f"must be {_describe_bounds(low, high, above)} (got {value})")


def _describe_bounds(low: float | None, high: float | None, above: float | None) -> str:
    if low is not None and high is not None:
        return f"between {low:g} and {high:g}"
    if above is not None:
        return f"greater than {above:g}"
    return f"at least {low:g}" if low is not None else f"at most {high:g}"


def _check_url(f: dataclasses.Field[Any], value: Any, dotted: str, origins: _Origins) -> None:
    """Apply a field's ``web_url(...)`` metadata."""
    schemes = f.metadata.get("url")
    if schemes is None or value is None:
        return
    try:
        parse_url(value, origins.label(dotted), schemes=schemes)
    except ConfigError as exc:
        raise origins.located(dotted, str(exc)) from None
