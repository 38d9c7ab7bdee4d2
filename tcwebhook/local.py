"""How local tools (replay, the printed curl line) reach the receiver of the same config."""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tcwebhook import protocol
from tcwebhook.config import ENV_PREFIX, AuthSettings, Settings
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


def curl_authorization(settings: Settings, environ: Mapping[str, str] | None = None) -> str:
    """The curl option that sends this receiver's credentials without writing them out: the
    generated token is read from its file; a configured secret from the environment variable
    that holds it, else from one the user is told to set (``${VAR:?...}`` stops the shell
    with that advice rather than sending no credentials and getting 401)."""
    environ = os.environ if environ is None else environ
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
        token = _secret_variable(auth.token, "auth.token", "TCWEBHOOK_TOKEN", settings, environ)
        return f'-H "Authorization: Bearer {token}"'
    password = _secret_variable(
        auth.password, "auth.password", "TCWEBHOOK_PASSWORD", settings, environ
    )
    return f'-u {shlex.quote(f"{auth.username}:")}"{password}"'


# What may stand inside the double-quoted ``${VAR:?advice}`` without the shell reading it.
_PLAIN = re.compile(r"[A-Za-z0-9_./ -]*")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _secret_variable(
    secret: str | None, key: str, fallback: str, settings: Settings, environ: Mapping[str, str]
) -> str:
    """``$NAME`` of a variable holding ``secret`` (the key's own, else any: the one the file's
    ``${VAR}`` names); without one, ``${fallback:?set fallback to KEY of FILE}``."""
    own = ENV_PREFIX + key.replace(".", "_").upper()
    holding = sorted(
        name
        for name, value in environ.items()
        if secret and value == secret and _NAME.fullmatch(name)
    )
    if holding:
        return f"${own}" if own in holding else f"${holding[0]}"
    where = key
    source = settings.source.absolute() if settings.source is not None else None
    if source is not None and _PLAIN.fullmatch(str(source)):
        where = f"{key} of {source}"
    return f"${{{fallback}:?set {fallback} to {where}}}"


def is_loopback(host: str) -> bool:
    """Only this machine can reach ``host`` (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
