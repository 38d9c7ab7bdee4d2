"""Settings from four layers, each overriding the one before: defaults, the YAML file,
environment variables, command-line flags.

Environment variables follow the dotted key: ``server.port`` is ``TCWEBHOOK_SERVER_PORT``,
``data_dir`` is ``TCWEBHOOK_DATA_DIR``. Any string in the file may use ``${VAR}`` or
``${VAR:-default}`` so that secrets stay out of the file. Values are converted to the schema's
types here, so that an error can name the key and the file:line, flag or variable that set it.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import os
import types
import typing
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any, Literal

from tcwebhook.config.schema import Settings, StoreSettings
from tcwebhook.config.yaml import Origins, read_yaml
from tcwebhook.errors import ConfigError
from tcwebhook.urls import parse_url

ENV_PREFIX = "TCWEBHOOK_"
CONFIG_ENV = "TCWEBHOOK_CONFIG"
DEFAULT_CONFIG_NAME = "tcwebhook.yaml"


_SECTIONS = frozenset(f.name for f in dataclasses.fields(Settings))


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
    sections: Collection[str] | None = None,
) -> Settings:
    """Build settings from defaults < file < environment < flags (dotted keys in ``flags``).

    A relative path in the file is relative to the file's folder; one given by a flag or an
    environment variable is relative to the working directory.

    ``sections``: the top-level keys a command uses (e.g. a read-only command needs only
    ``data_dir`` and ``store``). The whole file is checked as for ``serve``, but a ``${VAR}``
    of another section need not be set: such a section is then checked for its keys only.
    None: every section is used.
    """
    environ = os.environ if environ is None else environ
    path = find_config_file(config_file, environ)
    origins = Origins(f"{path}" if path else "settings", Path.cwd())
    raw: dict[str, Any] = {}
    if path is not None:
        raw = read_yaml(path, environ, origins, sections, _SECTIONS)
        origins.base_dir = path.resolve().parent
    for dotted, value in _environment_layer(environ).items():
        _set_dotted(raw, dotted, value)
        origins.override(dotted, ENV_PREFIX + dotted.replace(".", "_").upper())
    for dotted, value in (flags or {}).items():
        if value is not None:
            _set_dotted(raw, dotted, value)
            origins.override(dotted, flag_name(dotted))
    settings = _build_checking_all(raw, origins)
    return dataclasses.replace(
        settings, source=path, store=_resolve_store(settings.store, origins.base_for("store.url"))
    )


def _build_checking_all(raw: dict[str, Any], origins: Origins) -> Settings:
    """Every section checked as ``serve`` checks it; a section holding an unset ``${VAR}`` (one
    the command does not use) is checked for its keys only and left at its defaults."""
    unresolved = {_section_of(dotted) for dotted in origins.unresolved}
    if not unresolved:
        return typing.cast(Settings, _build(Settings, raw, "", origins))
    hints = typing.get_type_hints(Settings)
    for section in unresolved:
        _check_shape(hints[section], raw.get(section), section, origins)
    used = {key: value for key, value in raw.items() if key not in unresolved}
    return typing.cast(Settings, _build(Settings, used, "", origins))


def _section_of(dotted: str) -> str:
    return dotted.split(".", 1)[0].split("[", 1)[0]


def _check_shape(hint: Any, value: Any, dotted: str, origins: Origins) -> None:
    """Unknown and missing keys, without converting values (some may be unset ``${VAR}``s)."""
    target = _dataclass_of(hint)
    if target is not None:
        if isinstance(value, bool):
            return  # ``server.tls: false``; _convert checks that the section allows it
        hints = typing.get_type_hints(target)
        for key, child in _check_keys(target, value, dotted + ".", origins).items():
            _check_shape(hints[key], child, f"{dotted}.{key}", origins)
        return
    args = typing.get_args(hint)
    optional = type(None) in args
    if optional:
        hint = next(arg for arg in args if arg is not type(None))
    if typing.get_origin(hint) is tuple and isinstance(value, list):
        item = typing.get_args(hint)[0]
        for index, element in enumerate(value):
            _check_shape(item, element, f"{dotted}[{index}]", origins)


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


def _check_keys(cls: type, raw: Any, prefix: str, origins: Origins) -> dict[str, Any]:
    """``raw`` as a mapping of ``cls``'s keys: no unknown key, every required one given."""
    section = prefix.rstrip(".")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise origins.fail(section, "must be a mapping of keys")
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
    return raw


def _build(cls: type, raw: Any, prefix: str, origins: Origins) -> Any:
    section = prefix.rstrip(".")
    raw = _check_keys(cls, raw, prefix, origins)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
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


def _convert(hint: Any, value: Any, dotted: str, origins: Origins) -> Any:
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


def _choice(choices: tuple[Any, ...], value: Any, dotted: str, origins: Origins) -> Any:
    if isinstance(value, str) and value in choices:
        return value
    shown = origins.scalar_text.get(dotted, value)
    raise origins.fail(dotted, f"must be one of {', '.join(choices)} (got {shown!r})")


def _not_quoted_in_file(kind: str, value: Any, dotted: str, origins: Origins) -> None:
    # Environment variables and ${VAR} can only be text; quotes typed in the file say "text",
    # so "false" for a switch or "30" for a number is a mistake worth a word.
    if isinstance(value, str) and dotted in origins.quoted_text:
        raise origins.fail(dotted, f"must be {kind}, written without quotes (got {value!r})")


def _to_int(value: Any, dotted: str, origins: Origins) -> int:
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


def _to_float(value: Any, dotted: str, origins: Origins) -> float:
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


def _to_bool(value: Any, dotted: str, origins: Origins) -> bool:
    _not_quoted_in_file("true or false", value, dotted, origins)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise origins.fail(dotted, f"must be true or false (got {value!r})")


def _to_path(value: Any, dotted: str, origins: Origins) -> Path:
    if not isinstance(value, str | Path) or "\x00" in str(value):
        raise origins.fail(dotted, "must be a file path")
    path = Path(value).expanduser()
    return path if path.is_absolute() else origins.base_for(dotted) / path


def _to_str(value: Any, dotted: str, origins: Origins) -> str:
    if isinstance(value, dict | list):
        raise origins.fail(dotted, "must be a text value")
    if "\x00" in str(value):
        raise origins.fail(dotted, "must not hold a NUL character")
    # A number or date written in the file stays as written: "password: 0123" is "0123".
    return origins.scalar_text.get(dotted, str(value)) if not isinstance(value, str) else value


_SCALARS: dict[Any, Callable[[Any, str, Origins], Any]] = {
    int: _to_int,
    float: _to_float,
    bool: _to_bool,
    Path: _to_path,
    str: _to_str,
}


def _check_range(f: dataclasses.Field[Any], value: Any, dotted: str, origins: Origins) -> None:
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


def _check_url(f: dataclasses.Field[Any], value: Any, dotted: str, origins: Origins) -> None:
    """Apply a field's ``web_url(...)`` metadata."""
    schemes = f.metadata.get("url")
    if schemes is None or value is None:
        return
    try:
        parse_url(value, origins.label(dotted), schemes=schemes)
    except ConfigError as exc:
        raise origins.located(dotted, str(exc)) from None
