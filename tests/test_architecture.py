"""The house's rules, checked on the source: no import circle between modules or packages, no
module or class too large to read in one sitting."""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from tests.helpers.paths import REPOSITORY

PACKAGE = REPOSITORY / "tcwebhook"
MAX_MODULE_LINES = 600
MAX_CLASS_LINES = 250
# Data, not logic: the sample catalog is a list of payloads.
SIZE_EXEMPT = {"tcwebhook.samples.orders"}


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(REPOSITORY).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imported(name: str, path: Path, tree: ast.Module) -> Iterator[str]:
    """Every tcwebhook module ``name`` imports, at the top or inside a function."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    known = modules()

    def owner(target: str) -> str | None:
        while target and target not in known:
            target = target.rpartition(".")[0]
        return target or None

    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in known.items():
        for target in imported(name, path, ast.parse(path.read_text(encoding="utf-8"))):
            found = owner(target) if target.startswith("tcwebhook") else None
            if found and found != name:
                graph[name].add(found)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def package_of(module: str) -> str:
    """``tcwebhook.store.sqlite.writer`` → ``tcwebhook.store``; a top-level module is its own."""
    return ".".join(module.split(".")[:2])


def test_no_import_circle_between_modules() -> None:
    graph = import_graph()
    # A package's __init__ re-exporting its own modules, and a module importing its own
    # package's __init__, are one room, not a circle.
    within = {
        name: {t for t in targets if not (t.startswith(name + ".") or name.startswith(t + "."))}
        for name, targets in graph.items()
    }
    assert circles(within) == []


def test_no_import_circle_between_packages() -> None:
    packages: dict[str, set[str]] = defaultdict(set)
    for name, targets in import_graph().items():
        packages[package_of(name)] |= {package_of(t) for t in targets} - {package_of(name)}
    assert circles(packages) == []


def test_no_module_or_class_too_large() -> None:
    too_large = []
    for name, path in modules().items():
        if name in SIZE_EXEMPT:
            continue
        text = path.read_text(encoding="utf-8")
        if (lines := len(text.splitlines())) > MAX_MODULE_LINES:
            too_large.append(f"{name}: {lines} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                length = node.end_lineno - node.lineno + 1
                if length > MAX_CLASS_LINES:
                    too_large.append(f"{name}.{node.name}: {length} lines")
    assert too_large == []


def test_the_circle_finder_finds_a_circle() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
