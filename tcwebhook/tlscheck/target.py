"""Parse what the user typed (``https://host[:port][/path]`` or ``host[:port]``)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from tcwebhook.errors import TlsCheckError

DEFAULT_PORT = 443


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    path: str
    servername: str

    @property
    def sni(self) -> str:
        """The name to verify; Python's ssl leaves it out of SNI when it is an IP address."""
        return self.servername

    @property
    def display(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}{self.path}"


def parse_target(text: str, servername: str | None = None) -> Target:
    raw = text.strip()
    if "://" not in raw:
        raw = "https://" + raw
    parts = urlsplit(raw)
    if parts.scheme.lower() != "https":
        raise TlsCheckError(
            f"{text!r} is not an https:// URL; Tradecloud delivers only over HTTPS, "
            "so give https://host[:port][/path] or host[:port]"
        )
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError as exc:
        raise TlsCheckError(f"{text!r} has an invalid port; use a number from 1 to 65535") from exc
    host = parts.hostname
    if not host:
        raise TlsCheckError(f"{text!r} has no host name; give https://host[:port][/path]")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(host=host, port=port, path=path, servername=servername or host)
