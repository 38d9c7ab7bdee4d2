"""One parser for every URL a user types: ``replay --url``, the ``check-tls`` target,
``fetch --base-url`` and the URLs in the config file.

The standard library and yarl each reject malformed URLs with their own ``ValueError`` (an
unclosed ``[``, a port of 99999 or ``abc``, no host); here all of them become one sentence that
names the flag or key, so no command ends in a traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from tcwebhook.errors import ConfigError, TcwebhookError

DEFAULT_PORTS = {"https": 443, "http": 80}


@dataclass(frozen=True)
class WebUrl:
    """A URL that aiohttp can use: scheme, host, port and path are all valid."""

    text: str  # as given, without surrounding blanks (and with the default scheme, if added)
    scheme: str
    host: str  # without the brackets of an IPv6 address
    port: int  # the explicit port, else the scheme's default
    path: str  # path and query; at least "/"

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{host_port(self.host, self.port)}"


def host_port(host: str, port: int | None) -> str:
    """``host:port`` with an IPv6 address in brackets."""
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


def parse_url(
    text: str,
    what: str,
    *,
    schemes: Sequence[str] = ("https",),
    default_scheme: str | None = None,
    hint: str = "",
    error: type[TcwebhookError] = ConfigError,
) -> WebUrl:
    """Validate ``text``; ``what`` names it in messages (``--url``, ``tradecloud.base_url``)."""
    raw = text.strip()
    form = f"{schemes[0]}://host[:port][/path]"

    def fail(problem: str) -> TcwebhookError:
        return error(f"{what} {text!r} {problem}; give {form}{hint}")

    if not raw:
        raise fail("is empty")
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in raw):
        raise fail("holds a blank or control character (percent-encode it)")
    if default_scheme and "://" not in raw:
        raw = f"{default_scheme}://{raw}"
    try:
        parts = urlsplit(raw)
    except ValueError:  # the only one urlsplit raises: "Invalid IPv6 URL"
        raise fail("has an unclosed '[' (write an IPv6 address as [::1])") from None
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        allowed = " or ".join(f"{name}://" for name in schemes)
        raise fail(f"must start with {allowed}")
    try:
        port = parts.port
    except ValueError:
        raise fail("has an invalid port (use a number from 1 to 65535)") from None
    if port == 0:
        raise fail("has an invalid port (use a number from 1 to 65535)")
    if not parts.hostname:
        raise fail("has no host name")
    if parts.username is not None or parts.password is not None:
        raise fail("holds credentials; never put a user or password into a URL")
    _check_with_yarl(raw, fail)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return WebUrl(raw, scheme, parts.hostname, port or DEFAULT_PORTS.get(scheme, 443), path)


def _check_with_yarl(raw: str, fail: Callable[[str], TcwebhookError]) -> None:
    # aiohttp parses with yarl, which refuses some hosts urlsplit lets through (a 64-character
    # label, invalid IDNA): find out now rather than as a traceback in the middle of a request.
    from yarl import URL

    try:
        host = URL(raw).host
    except (ValueError, UnicodeError) as exc:
        raise fail(f"is not a valid URL ({exc})") from None
    if not host:
        raise fail("has no host name")
