"""How local tools (replay, the printed curl line) reach the receiver of the same config."""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass
from pathlib import Path

from tcwebhook import protocol
from tcwebhook.config import AuthSettings, Settings
from tcwebhook.datadir import DEV_CA_FILE, DEV_TOKEN_FILE


@dataclass(frozen=True)
class LocalTarget:
    order_url: str
    shipment_url: str
    ca_file: Path | None  # the development CA, when the server uses it
    authorization: str | None  # full Authorization header value; a secret: never print it


def base_url(settings: Settings, port: int | None = None) -> str:
    """``https://host:port`` for a client on this machine (the dev certificate names localhost)."""
    host = settings.server.host
    dev_mode = settings.server.tls.cert is None
    if host in ("0.0.0.0", "::", "") or (dev_mode and host in ("127.0.0.1", "::1")):
        host = "localhost"
    elif ":" in host:
        host = f"[{host}]"
    scheme = "https" if settings.server.tls.enabled else "http"  # http: behind a local proxy
    return f"{scheme}://{host}:{port or settings.server.port}"


def authorization_header(settings: AuthSettings) -> str | None:
    """The header value a client must send, for local tools (replay, the printed curl line)."""
    if settings.type == "bearer":
        return protocol.bearer_header(settings.token) if settings.token else None
    if settings.username and settings.password:
        return protocol.basic_header(settings.username, settings.password)
    return None


def local_target(settings: Settings) -> LocalTarget:
    """The receiver as ``tcwebhook serve`` runs it with these settings."""
    base = base_url(settings)
    dev_mode = settings.server.tls.cert is None
    ca_file = settings.data_dir / DEV_CA_FILE if dev_mode else None
    authorization = authorization_header(settings.auth)
    token_file = settings.data_dir / DEV_TOKEN_FILE
    if authorization is None and token_file.is_file():
        authorization = protocol.bearer_header(token_file.read_text().strip())
    paths = settings.server.paths
    return LocalTarget(base + paths.order, base + paths.shipment, ca_file, authorization)


def curl_authorization(settings: Settings) -> str:
    """The curl option that sends this receiver's credentials without writing them out: the
    generated token is read from its file, configured secrets from the environment."""
    auth = settings.auth
    if auth.type == "entra":
        return '-H "Authorization: Bearer $ENTRA_ACCESS_TOKEN"'
    if auth.type == "bearer":
        token_file = settings.data_dir / DEV_TOKEN_FILE
        generated = token_file.is_file() and (
            not auth.token or token_file.read_text().strip() == auth.token
        )
        if generated:
            return f'-H "Authorization: Bearer $(cat {shlex.quote(str(token_file))})"'
        return '-H "Authorization: Bearer $TCWEBHOOK_TOKEN"'
    return f"-u '{auth.username}:'\"$TCWEBHOOK_PASSWORD\""


def is_loopback(host: str) -> bool:
    """Only this machine can reach ``host`` (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
