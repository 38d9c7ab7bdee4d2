"""The bounded YAML reader: a config file as plain values, with the file:line of every key.

Unlike ``yaml.safe_load`` it refuses duplicate keys, aliases that contain themselves and alias
bombs, stops at a depth and a size, interpolates ``${VAR}`` / ``${VAR:-default}`` and keeps the
text of scalars as written (``password: 0123`` stays "0123").
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tcwebhook.errors import ConfigError

# A config file is a handful of keys: bounds that stop alias bombs and runaway nesting early.
MAX_YAML_NODES = 10_000
MAX_YAML_DEPTH = 64


@dataclass
class Origins:
    """Where each dotted key's value came from, for messages and for resolving relative paths."""

    where: str  # the file, or "settings" without one
    base_dir: Path  # relative paths in the file resolve against its folder
    marks: dict[str, str] = field(default_factory=dict)  # key -> "file:line"
    outside: dict[str, str] = field(default_factory=dict)  # key -> "--flag" or "TCWEBHOOK_..."
    quoted_text: set[str] = field(default_factory=set)  # keys given as quoted text in the file
    scalar_text: dict[str, str] = field(default_factory=dict)  # key -> a non-text scalar as written
    # keys of skipped sections whose ${VAR} is not set: key -> the error it would have been
    unresolved: dict[str, str] = field(default_factory=dict)

    def override(self, dotted: str, label: str) -> None:
        """A flag or environment variable ``label`` set this key: forget what the file said."""
        self.outside[dotted] = label
        self.quoted_text.discard(dotted)
        self.scalar_text.pop(dotted, None)
        self.unresolved.pop(dotted, None)

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


def read_yaml(
    path: Path,
    environ: Mapping[str, str],
    origins: Origins,
    sections: Collection[str] | None = None,
    known: Collection[str] = (),
) -> dict[str, Any]:
    """The file's top-level mapping. ``sections``: the top-level keys the caller uses; in the
    others (those of ``known`` not in ``sections``) an unset ``${VAR}`` is no error: the text
    stays as written and the key is listed in ``origins.unresolved``. None: every section."""
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
        lenient = frozenset(known) - frozenset(sections) if sections is not None else frozenset()
        value = _Constructor(path, environ, origins, lenient).construct(node, "", 0)
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

    def __init__(
        self,
        path: Path,
        environ: Mapping[str, str],
        origins: Origins,
        lenient: Collection[str] = (),
    ) -> None:
        self.path = path
        self.lenient = lenient  # top-level sections where an unset ${VAR} is left as it is
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
        try:
            value = interpolate(value, self.environ, f"{position}: {dotted}")
        except ConfigError as exc:
            if re.split(r"[.\[]", dotted, maxsplit=1)[0] not in self.lenient:
                raise
            self.origins.unresolved[dotted] = str(exc)
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
