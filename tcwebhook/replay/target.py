"""Where and how replay sends: the order and shipment URLs, trust and credentials."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from tcwebhook import protocol
from tcwebhook.errors import ReplaySourceError, ReplayTargetError
from tcwebhook.protocol import Resource

if TYPE_CHECKING:
    from tcwebhook.config import Settings

Method = Literal["POST", "GET"]
IdIn = Literal["path", "query"]


@dataclass(frozen=True)
class Target:
    """Where and how to send: the order and shipment URLs, trust and credentials."""

    order_url: str
    shipment_url: str
    ca_file: Path | None = None
    authorization: str | None = field(default=None, repr=False)
    insecure: bool = False
    method: Method = "POST"
    id_in: IdIn = "path"

    def url_for(self, resource: Resource) -> str:
        return self.order_url if resource == "order" else self.shipment_url


def resolve_target(
    settings: Settings,
    *,
    url: str | None = None,
    token: str | None = None,
    user: str | None = None,
    password: str | None = None,
    ca_file: Path | None = None,
    insecure: bool = False,
    method: Method = "POST",
    id_in: IdIn = "path",
) -> Target:
    """The target from flags, else from the configuration's local server (dev CA and token)."""
    if token and (user or password):
        raise ReplaySourceError("give either --token or --user/--password, not both")
    if bool(user) != bool(password):
        raise ReplaySourceError("--user and --password go together")
    _check_credential_text(token=token, user=user, password=password)
    authorization = None
    if token:
        authorization = protocol.bearer_header(protocol.without_bearer(token))
    elif user and password:
        authorization = protocol.basic_header(user, password)
    if url is not None:
        from tcwebhook.urls import parse_url

        parse_url(
            url,
            "--url",
            hint=" (Tradecloud sends webhooks over HTTPS only)",
            error=ReplaySourceError,
        )
        if authorization is None:
            authorization = _configured_authorization(settings)
        return Target(url, url, ca_file, authorization, insecure, method, id_in)
    from tcwebhook.local import local_target

    local = local_target(settings)
    if ca_file is None and local.ca_file is not None and not local.ca_file.exists():
        raise ReplayTargetError(
            f"'tcwebhook serve' has not created its development CA yet ({local.ca_file}): "
            "start 'tcwebhook serve' with the same configuration once, or give --url "
            "(and --ca-file) to send elsewhere"
        )
    return Target(
        local.order_url,
        local.shipment_url,
        ca_file or local.ca_file,
        authorization or local.authorization,
        insecure,
        method,
        id_in,
    )


def _check_credential_text(**values: str | None) -> None:
    """A line break in a header value would end the header (or make aiohttp raise)."""
    for name, value in values.items():
        if value and any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
            raise ReplaySourceError(f"--{name} holds a control character (a line break?)")
    if values.get("user") and ":" in str(values["user"]):
        raise ReplaySourceError("--user must not contain ':' (HTTP Basic cannot carry it)")


BEARER_COMMAND_TIMEOUT = 60.0


def bearer_from_command(command: str) -> str:
    """The token a command prints on stdout (e.g. ``az account get-access-token --query
    accessToken -o tsv``): how a short-lived Entra token reaches replay without a shell history."""
    import shlex
    import subprocess

    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ReplaySourceError(
            f"--bearer-from-command: cannot split the command ({exc})"
        ) from None
    if not argv:
        raise ReplaySourceError("--bearer-from-command needs a command")
    try:
        finished = subprocess.run(
            argv, capture_output=True, timeout=BEARER_COMMAND_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise ReplaySourceError(f"--bearer-from-command: cannot run {argv[0]}: {reason}") from None
    # Neither stdout nor stderr is echoed: either may hold the token.
    if finished.returncode != 0:
        raise ReplaySourceError(
            f"--bearer-from-command: {argv[0]} exited with code {finished.returncode}"
        )
    lines = finished.stdout.decode("utf-8", "replace").strip().splitlines()
    token = lines[-1].strip() if lines else ""
    if not token or any(character.isspace() for character in token):
        raise ReplaySourceError(
            f"--bearer-from-command: {argv[0]} printed no token (one line, no spaces, expected)"
        )
    return protocol.without_bearer(token)


def _configured_authorization(settings: Settings) -> str | None:
    if settings.auth.type == "entra":
        return None
    from tcwebhook.local import authorization_header

    return authorization_header(settings.auth)


def request_url(
    target: Target, resource: Resource, resource_id: str | None, method: Method | None = None
) -> str:
    """The URL one event goes to; for GET, with the id in the placeholder, path or query.
    ``method`` is the target's unless given (a stored GET notification is always a GET)."""
    from urllib.parse import quote

    from yarl import URL

    base = target.url_for(resource)
    if (method or target.method) == "POST":
        return base
    if resource_id is None:
        raise ReplaySourceError(
            f"--method GET needs the {resource} id, and the body has none "
            f"({'orderId' if resource == 'order' else 'shipment.id'})"
        )
    placeholder = "{orderId}" if resource == "order" else "{shipmentId}"
    if placeholder in base:
        return base.replace(placeholder, quote(resource_id, safe=""))
    if target.id_in == "path":
        return base.rstrip("/") + "/" + quote(resource_id, safe="")
    name = "orderId" if resource == "order" else "shipmentId"
    return str(URL(base).update_query({name: resource_id}))
