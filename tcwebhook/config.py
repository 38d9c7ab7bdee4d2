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
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from tcwebhook.errors import ConfigError

ENV_PREFIX = "TCWEBHOOK_"
CONFIG_ENV = "TCWEBHOOK_CONFIG"
DEFAULT_CONFIG_NAME = "tcwebhook.yaml"

API_BASE_URLS = {
    "acceptance": "https://api.accp.tradecloud1.com/v2",
    "production": "https://api.tradecloud1.com/v2",
}


@dataclass(frozen=True)
class TlsFiles:
    cert: Path | None = None
    key: Path | None = None

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise ConfigError(
                "server.tls needs both 'cert' and 'key' (or neither, for the development CA)"
            )


@dataclass(frozen=True)
class Paths:
    order: str = "/tradecloud/order"
    shipment: str = "/tradecloud/shipment"

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
    port: int = 8443
    tls: TlsFiles = field(default_factory=TlsFiles)
    max_body_bytes: int = 10 * 1024 * 1024
    paths: Paths = field(default_factory=Paths)
    limits: ServerLimits = field(default_factory=ServerLimits)

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"server.port must be between 0 and 65535 (got {self.port})")
        if self.max_body_bytes < 1024:
            raise ConfigError("server.max_body_bytes must be at least 1024")


@dataclass(frozen=True)
class AuthSettings:
    type: Literal["bearer", "basic"] = "bearer"
    token: str | None = None
    username: str | None = None
    password: str | None = None

    @property
    def configured(self) -> bool:
        if self.type == "bearer":
            return bool(self.token)
        return bool(self.username and self.password)

    def __post_init__(self) -> None:
        if self.type == "basic" and not (self.username and self.password):
            raise ConfigError("auth.type 'basic' needs both auth.username and auth.password")
        if self.username and ":" in self.username:
            raise ConfigError("auth.username must not contain ':' (HTTP Basic cannot carry it)")


@dataclass(frozen=True)
class StoreSettings:
    url: str | None = None  # None: sqlite in the data directory


@dataclass(frozen=True)
class TradecloudSettings:
    environment: Literal["acceptance", "production"] = "acceptance"
    base_url: str | None = None
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None

    @property
    def api_base_url(self) -> str:
        return (self.base_url or API_BASE_URLS[self.environment]).rstrip("/")


@dataclass(frozen=True)
class RetrySettings:
    max_attempts: int = 25
    max_delay: float = 1800.0  # seconds; back-off doubles from base_delay up to this
    base_delay: float = 1.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_delay <= 0 or self.max_delay < self.base_delay:
            raise ConfigError("retry needs max_attempts >= 1 and 0 < base_delay <= max_delay")


@dataclass(frozen=True)
class SinkSettings:
    """Where stored events are handed on to: a directory, a command or an HTTP endpoint."""

    name: str
    type: Literal["directory", "command", "http"]
    events: tuple[str, ...] = ()  # eventName globs; empty: every event
    kinds: tuple[str, ...] = ()  # event kinds; empty: every kind
    content: Literal["payload", "envelope"] = "payload"
    path: Path | None = None  # directory
    run: tuple[str, ...] = ()  # command: program and arguments
    url: str | None = None  # http
    headers: dict[str, str] = field(default_factory=dict)  # http
    ca_file: Path | None = None  # http: extra CA to trust
    timeout: float = 30.0
    concurrency: int = 1  # 1 keeps the sink's events strictly in order
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
        if self.url and not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"sink '{self.name}': url must start with https:// or http://")
        if self.concurrency < 1 or self.timeout <= 0:
            raise ConfigError(f"sink '{self.name}': concurrency must be >= 1 and timeout > 0")
        kinds = {"order", "single_delivery_order", "order_documents", "shipment",
                 "order_notification", "shipment_notification"}  # fmt: skip
        unknown = [kind for kind in self.kinds if kind not in kinds]
        if unknown:
            raise ConfigError(
                f"sink '{self.name}': unknown kind {unknown[0]!r} "
                f"(valid: {', '.join(sorted(kinds))})"
            )


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=lambda: default_data_dir())
    server: ServerSettings = field(default_factory=ServerSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    tradecloud: TradecloudSettings = field(default_factory=TradecloudSettings)
    sinks: tuple[SinkSettings, ...] = ()
    source: Path | None = None  # the file the settings came from, for messages

    def __post_init__(self) -> None:
        names = [sink.name for sink in self.sinks]
        if len(set(names)) != len(names):
            raise ConfigError("sinks: every sink needs a different name")

    @property
    def store_url(self) -> str:
        return self.store.url or f"sqlite:///{self.data_dir / 'events.db'}"


def default_data_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("tcwebhook", appauthor=False))


# --------------------------------------------------------------------------------------------
# Loading


def find_config_file(explicit: Path | None, environ: Mapping[str, str]) -> Path | None:
    """The file named by --config, else $TCWEBHOOK_CONFIG, else ./tcwebhook.yaml if present."""
    if explicit is not None:
        return explicit
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV])
    local = Path(DEFAULT_CONFIG_NAME)
    return local if local.is_file() else None


def load_settings(
    config_file: Path | None = None,
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build settings from defaults < file < environment < flags (dotted keys in ``flags``)."""
    environ = os.environ if environ is None else environ
    path = find_config_file(config_file, environ)
    raw: dict[str, Any] = {}
    marks: dict[str, str] = {}
    base_dir = Path.cwd()
    if path is not None:
        raw, marks = _read_yaml(path, environ)
        base_dir = path.resolve().parent
    for dotted, value in _environment_layer(environ).items():
        _set_dotted(raw, dotted, value)
    for dotted, value in (flags or {}).items():
        if value is not None:
            _set_dotted(raw, dotted, value)
    where = f"{path}" if path else "settings"
    settings = _build(Settings, raw, "", marks, where, base_dir)
    return dataclasses.replace(
        settings, source=path, store=_resolve_store(settings.store, base_dir)
    )


def _resolve_store(store: StoreSettings, base_dir: Path) -> StoreSettings:
    """A relative sqlite path is relative to the config file, like every other path in it."""
    prefix = "sqlite:///"
    if store.url and store.url.startswith(prefix):
        path = Path(store.url[len(prefix) :]).expanduser()
        if not path.is_absolute():
            return StoreSettings(url=prefix + str(base_dir / path))
    return store


def _read_yaml(path: Path, environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        position = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}{position}: invalid YAML: {problem}") from None
    if node is None:
        return {}, {}
    marks: dict[str, str] = {}
    value = _construct(node, "", marks, path, environ)
    if not isinstance(value, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of keys (data_dir, server, ...)"
        )
    return value, marks


def _construct(
    node: yaml.Node, dotted: str, marks: dict[str, str], path: Path, environ: Mapping[str, str]
) -> Any:
    """Turn a YAML node into Python values, remembering where each key stands in the file."""
    position = f"{path}:{node.start_mark.line + 1}"
    if dotted:
        marks[dotted] = position
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = f"{dotted}.{key}" if dotted else key
            result[key] = _construct(value_node, child, marks, path, environ)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _construct(item, f"{dotted}[{index}]", marks, path, environ)
            for index, item in enumerate(node.value)
        ]
    value = yaml.SafeLoader("").construct_object(node, deep=True)
    if isinstance(value, str):
        value = interpolate(value, environ, f"{position}: {dotted}")
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


def _build(
    cls: type, raw: Any, prefix: str, marks: dict[str, str], where: str, base_dir: Path
) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{_at(prefix.rstrip('.'), marks, where)}: must be a mapping of keys")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.name != "source"}
    for key in raw:
        if key not in known:
            dotted = prefix + str(key)
            choices = ", ".join(sorted(known))
            raise ConfigError(
                f"{_at(dotted, marks, where)}: unknown key '{dotted}' (valid: {choices})"
            )
    values = {}
    for key, value in raw.items():
        dotted = prefix + key
        values[key] = _convert(hints[key], value, dotted, marks, where, base_dir)
    try:
        return cls(**values)
    except ConfigError as exc:
        raise ConfigError(f"{_at(prefix.rstrip('.'), marks, where)}: {exc}") from None


def _convert(
    hint: Any, value: Any, dotted: str, marks: dict[str, str], where: str, base_dir: Path
) -> Any:
    target = _dataclass_of(hint)
    if target is not None:
        return _build(target, value, dotted + ".", marks, where, base_dir)
    args = typing.get_args(hint)
    optional = type(None) in args and (typing.get_origin(hint) in (typing.Union, types.UnionType))
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{_at(dotted, marks, where)}: {dotted} must not be empty")
    if optional:
        hint = next(a for a in args if a is not type(None))
    origin = typing.get_origin(hint)
    if origin in (tuple, list):
        if not isinstance(value, list):
            raise ConfigError(f"{_at(dotted, marks, where)}: {dotted} must be a list")
        item = typing.get_args(hint)[0]
        return tuple(
            _convert(item, element, f"{dotted}[{index}]", marks, where, base_dir)
            for index, element in enumerate(value)
        )
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{_at(dotted, marks, where)}: {dotted} must be a mapping")
        item = typing.get_args(hint)[1]
        return {
            str(key): _convert(item, element, f"{dotted}.{key}", marks, where, base_dir)
            for key, element in value.items()
        }
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(
                f"{_at(dotted, marks, where)}: {dotted} must be one of "
                f"{', '.join(choices)} (got {value!r})"
            )
        return value
    if hint is int:
        if isinstance(value, bool):
            raise ConfigError(f"{_at(dotted, marks, where)}: {dotted} must be a whole number")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{_at(dotted, marks, where)}: {dotted} must be a whole number (got {value!r})"
            ) from None
    if hint is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{_at(dotted, marks, where)}: {dotted} must be a number (got {value!r})"
            ) from None
    if hint is bool:
        if isinstance(value, str) and value.lower() in (
            "1",
            "true",
            "yes",
            "on",
            "0",
            "false",
            "no",
            "off",
        ):
            return value.lower() in ("1", "true", "yes", "on")
        if not isinstance(value, bool):
            raise ConfigError(f"{_at(dotted, marks, where)}: {dotted} must be true or false")
        return value
    if hint is Path:
        if not isinstance(value, str | Path):
            raise ConfigError(f"{_at(dotted, marks, where)}: {dotted} must be a file path")
        path = Path(value).expanduser()
        return path if path.is_absolute() else base_dir / path
    if hint is str:
        if isinstance(value, dict | list):
            raise ConfigError(f"{_at(dotted, marks, where)}: {dotted} must be a text value")
        return str(value)
    return value


def _at(dotted: str, marks: dict[str, str], where: str) -> str:
    return marks.get(dotted, where)
