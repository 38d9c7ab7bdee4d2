"""A command line typer cannot parse, as one line in our words (exit code 2).

Typer reports these in a framed box of four or five lines, worded by its validator ("Input
should be a valid integer", "Value error, 'x' is not one of ..."). ``main`` runs the app without
that handling and hands the exception here instead. Typer bundles its own copy of click, so the
exception classes are found through its public ``BadParameter`` rather than imported from click.
"""

from __future__ import annotations

import re
from typing import Any

import typer


def _click_class(name: str) -> type[Exception]:
    return next(cls for cls in typer.BadParameter.__mro__ if cls.__name__ == name)


ClickException = _click_class("ClickException")
UsageError = _click_class("UsageError")

_CHOICES = re.compile(r"is not one of (.+?)\.?$")
_BOUNDS = {
    "less_than_equal": ("le", "at most"),
    "less_than": ("lt", "less than"),
    "greater_than_equal": ("ge", "at least"),
    "greater_than": ("gt", "greater than"),
}


def usage_message(exc: Exception) -> str:
    """What is wrong with the command line and where to read more, on one line."""
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else "tcwebhook"
    name = type(exc).__name__
    if name == "NoSuchOption":
        problem = _unknown_option(exc)
    elif name == "BadOptionUsage" and getattr(exc, "option_name", None):
        problem = f"{exc.option_name} needs a value"  # type: ignore[attr-defined]
    elif name == "MissingParameter":
        problem = _missing(exc)
    elif isinstance(exc, typer.BadParameter):
        problem = _bad_value(exc)
    else:
        problem = _first_line(exc)
    return f"{problem}; see '{command} --help'"


def _unknown_option(exc: Any) -> str:
    problem = f"unknown option {exc.option_name}"
    possibilities = sorted(exc.possibilities or ())
    if possibilities:
        problem += f" (did you mean {' or '.join(possibilities)}?)"
    return problem


def _missing(exc: Any) -> str:
    param = exc.param
    if param is None:
        return _first_line(exc)
    if param.param_type_name == "argument":
        return f"missing argument {(param.name or 'argument').upper()}"
    return f"missing option {param.opts[0]}"


def _bad_value(exc: Any) -> str:
    """``--port must be a whole number (got 'abc')``: the flag, the rule, what was typed."""
    param = exc.param
    flag = param.opts[0] if param is not None and param.opts else "a value"
    if param is not None and param.param_type_name == "argument":
        flag = (param.name or "argument").upper()
    details = _validator_details(exc)
    if details is None:
        return f"{flag}: {_first_line(exc)}"
    kind, given, context = details
    got = f" (got {given!r})" if given is not None else ""
    if kind == "int_parsing" or kind == "int_from_float":
        return f"{flag} must be a whole number{got}"
    if kind in ("float_parsing", "finite_number"):
        return f"{flag} must be a number{got}"
    if kind in ("bool_parsing",):
        return f"{flag} must be true or false{got}"
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        return f"{flag} must be {words} {context.get(key)}{got}"
    choices = _CHOICES.search(str(context.get("error", "")))
    if choices:
        listed = ", ".join(part.strip().strip("'\"") for part in choices.group(1).split(","))
        return f"{flag} must be one of {listed}{got}"
    return f"{flag}: {_first_line(exc)}"


def _validator_details(exc: Exception) -> tuple[str, Any, dict[str, Any]] | None:
    """The validator's own record of the error (kind, input, context), when it left one."""
    errors = getattr(exc.__cause__, "errors", None)
    if not callable(errors):
        return None
    try:
        first = errors()[0]
    except (TypeError, IndexError):
        return None
    return str(first.get("type", "")), first.get("input"), dict(first.get("ctx") or {})


def _first_line(exc: Exception) -> str:
    format_message = getattr(exc, "format_message", None)
    text = format_message() if callable(format_message) else str(exc)
    text = text.replace("Value error, ", "").replace("Input should be", "must be")
    text = text.replace("No such command", "unknown command")
    lines = text.strip().splitlines()
    first = lines[0] if lines else type(exc).__name__
    return first[0].lower() + first[1:].rstrip(".") if first else first
