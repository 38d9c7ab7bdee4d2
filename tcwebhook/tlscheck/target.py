"""Parse what the user typed (``https://host[:port][/path]`` or ``host[:port]``)."""

from __future__ import annotations

from dataclasses import dataclass

from tcwebhook.errors import TlsCheckError
from tcwebhook.urls import parse_url


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
    url = parse_url(
        text,
        "TARGET",
        default_scheme="https",
        hint=" or host[:port] (Tradecloud delivers only over HTTPS)",
        error=TlsCheckError,
    )
    return Target(url.host, url.port, url.path, servername=servername or url.host)
