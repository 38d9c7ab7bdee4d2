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
_BRACKETED = re.compile(r"\[([^\[\]]+)\](?::\d+)?")


def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(
        ipaddress.ip_network(entry, strict=False) for entry in entries if entry != UNIX_PEER
    )


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith('"') and text.endswith('"') and len(text) > 1:
        text = text[1:-1]
    bracketed = _BRACKETED.fullmatch(text)
    if bracketed:  # IPv6, perhaps with a port: "[2001:db8::1]:4711"
        text = bracketed.group(1)
    elif text.count(":") == 1:  # IPv4 with a port
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
        x_forwarded = request.headers.getall("X-Forwarded-For", [])
        if forwarded and x_forwarded:
            # A proxy sets one of them and may pass the other on from the client untouched
            # (nginx as documented does): believe them only when they agree.
            by_forwarded = self._from_chain(peer, _forwarded_for(forwarded))
            by_x_forwarded = self._from_chain(peer, _split(x_forwarded))
            return by_forwarded if by_forwarded == by_x_forwarded else peer
        if forwarded:
            return self._from_chain(peer, _forwarded_for(forwarded))
        return self._from_chain(peer, _split(x_forwarded))

    def _from_chain(self, peer: str, chain: list[str]) -> str:
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


def _split(headers: list[str]) -> list[str]:
    return [entry.strip() for entry in ",".join(headers).split(",") if entry.strip()]


def _forwarded_for(headers: list[str]) -> list[str]:
    """The ``for=`` of each element of RFC 7239 ``Forwarded``; an unreadable element gives ``?``."""
    chain = []
    for element in _split(headers):
        found = "?"
        for pair in element.split(";"):
            name, equals, value = pair.partition("=")
            if name.strip().lower() == "for":
                found = value if equals else "?"
        chain.append(found)
    return chain


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
