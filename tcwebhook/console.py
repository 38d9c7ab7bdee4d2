"""All terminal output: Rich tables and panels for people, JSON for scripts.

Library code never prints; commands hand their results here. Rich disables colour by itself
when the output is not a terminal (and honours NO_COLOR).
"""

from __future__ import annotations

import re
import sys
from functools import cache
from typing import Any

import orjson
from rich.console import Console
from rich.text import Text


@cache
def stdout() -> Console:
    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal:
        console.width = 160  # piped into a file or less: don't squeeze tables to 80 columns
    return console


@cache
def stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


# C0 and C1 controls, DEL, line/paragraph separators and bidirectional overrides: a sender could
# forge a line, move the cursor or reorder what a person reads.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
VALUE_LIMIT = 200  # characters of one payload value shown to people


def printable(value: object, limit: int | None = VALUE_LIMIT, keep: str = "") -> str:
    """A value from a payload, for one terminal or log line: control characters escaped
    (``\\x1b``) and cut to ``limit`` characters. ``keep``: controls left as they are."""
    text = str(value)
    if limit is not None and len(text) > limit:
        text = f"{text[:limit]}… ({len(text)} characters)"

    def escape(match: re.Match[str]) -> str:
        char = match.group()
        if char in keep:
            return char
        code = ord(char)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _CONTROLS.sub(escape, text)


def safe_text(value: object, limit: int | None = VALUE_LIMIT, keep: str = "") -> Text:
    """``printable`` as Rich text, never read as markup."""
    return Text(printable(value, limit, keep))


def print_json(data: Any) -> None:
    """Pretty JSON on stdout, for --json (stable keys, UTF-8, no colour)."""
    sys.stdout.write(to_json(data, pretty=True) + "\n")
    sys.stdout.flush()


def to_json(data: Any, pretty: bool = False) -> str:
    option = orjson.OPT_NON_STR_KEYS
    if pretty:
        option |= orjson.OPT_INDENT_2
    return orjson.dumps(data, default=_json_default, option=option).decode()


def _json_default(value: Any) -> Any:
    from decimal import Decimal
    from pathlib import Path

    if isinstance(value, Decimal):
        return float(value) if value != value.to_integral_value() else int(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def error(message: str) -> None:
    """One readable line on stderr: what is wrong and how to fix it."""
    stderr().print(Text.assemble(("error: ", "bold red"), message))


def warning(message: str) -> None:
    stderr().print(Text.assemble(("warning: ", "yellow"), message))


def info(message: str) -> None:
    stderr().print(Text(message))


def print_json_line(data: Any) -> None:
    """One compact JSON object per line (logs for machines)."""
    sys.stdout.write(to_json(data) + "\n")
    sys.stdout.flush()
