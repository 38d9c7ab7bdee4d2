"""Behind a reverse proxy: who the client really is, and whether it may deliver at all.

``X-Forwarded-For`` and ``Forwarded`` are believed only from the peers in
``server.proxy.trusted``; anyone else could write any address there. The client is the
right-most address in the chain that is not itself a trusted proxy.
"""

from __future__ import annotations

import ipaddress
import re

from aiohttp import web

from tcwebhook.config import ServerSettings
from tcwebhook.errors import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
UNIX_PEER = "unix"
_FORWARDED_FOR = re.compile(r'for\s*=\s*"?\[?([^\]";,\s]+)', re.IGNORECASE)


def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(
        ipaddress.ip_network(entry, strict=False) for entry in entries if entry != UNIX_PEER
    )


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip().strip('"').strip("[]")
    if text.count(":") == 1:  # IPv4 with a port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class ClientAddresses:
    """The client address of a request and the ``server.allow_from`` rule."""

    def __init__(self, server: ServerSettings) -> None:
        self._trusted = _networks(server.proxy.trusted)
        self._unix_trusted = UNIX_PEER in server.proxy.trusted
        self._allowed = _networks(server.allow_from)
        self._allow_all = not server.allow_from

    def _is_trusted(self, address: str) -> bool:
        if address == UNIX_PEER:
            return self._unix_trusted
        parsed = _address(address)
        return parsed is not None and any(parsed in network for network in self._trusted)

    def client(self, request: web.Request) -> str:
        """The client's address: the peer, or what a trusted proxy says the client was."""
        peer = request.remote or UNIX_PEER
        if not self._is_trusted(peer):
            return peer
        forwarded = request.headers.getall("Forwarded", [])
        if forwarded:
            chain = _FORWARDED_FOR.findall(",".join(forwarded))
        else:
            chain = ",".join(request.headers.getall("X-Forwarded-For", [])).split(",")
        chain = [entry.strip() for entry in chain if entry.strip()]
        for entry in reversed(chain):
            address = _address(entry)
            if address is None:
                return peer  # a chain we cannot read names nobody: keep the proxy's address
            if not self._is_trusted(str(address)):
                return str(address)
        return str(_address(chain[0])) if chain else peer

    def allowed(self, client: str) -> bool:
        if self._allow_all:
            return True
        address = _address(client)
        return address is not None and any(address in network for network in self._allowed)


def needed(server: ServerSettings) -> bool:
    """Whether requests need looking at: a proxy to believe or clients to filter."""
    return bool(server.proxy.trusted or server.allow_from)


def check_plain_http(server: ServerSettings, loopback: bool) -> None:
    """``server.tls: false`` only behind a local proxy; anything else is refused, with why."""
    if server.tls.enabled:
        return
    if not (loopback or server.unix_socket is not None):
        raise ConfigError(
            f"server.tls is false but serve would listen on {server.host}, which other machines "
            "can reach: plain HTTP is only for a TLS-terminating proxy on this machine; listen "
            "on 127.0.0.1 (or server.unix_socket) and let the proxy face Tradecloud"
        )
    if not server.proxy.trusted:
        raise ConfigError(
            "server.tls is false but server.proxy.trusted is empty: list the reverse proxy's "
            "address (e.g. 127.0.0.1, or 'unix' with server.unix_socket), or set server.tls "
            "back to a certificate"
        )
