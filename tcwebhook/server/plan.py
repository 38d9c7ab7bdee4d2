"""What ``serve`` will run, decided before anything is bound: the settings checked for safety,
development mode filled in (certificate, token). ``run`` serves a plan; ``reload`` makes a new
one from the same sources on SIGHUP."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tcwebhook.auth.static import dev_token
from tcwebhook.config import AuthSettings, Settings
from tcwebhook.datadir import DEV_TOKEN_FILE
from tcwebhook.errors import ConfigError
from tcwebhook.local import base_url, is_loopback
from tcwebhook.server import tlsproto
from tcwebhook.server.proxy import check_plain_http
from tcwebhook.server.tls import CertificateFiles, dev_certificates, server_context

TESTED_PYTHONS = "CPython 3.11"  # the versions CI runs serve's TLS tests on


@dataclass(frozen=True)
class ServePlan:
    """Everything ``serve`` decided before binding, for the start-up banner."""

    settings: Settings  # with the generated dev token filled in, if any
    certificates: CertificateFiles | None  # None: plain HTTP behind a local proxy
    dev_ca: Path | None  # clients must trust this CA (development mode)
    dev_token_file: Path | None  # where the generated token lives (development mode)
    # Reads the settings again from the same file, environment and flags (SIGHUP).
    load_settings: Callable[[], Settings] | None = None

    def url(self, path: str, port: int | None = None) -> str:
        return base_url(self.settings, port) + path

    def with_loader(self, load_settings: Callable[[], Settings] | None) -> ServePlan:
        return dataclasses.replace(self, load_settings=load_settings)


def plan(settings: Settings) -> ServePlan:
    """Check the settings are safe to serve with, and fill in development mode."""
    server = settings.server
    loopback = is_loopback(server.host)
    check_plain_http(server, loopback)
    behind_proxy = not server.tls.enabled
    if not loopback and not (settings.auth.configured and server.tls.cert):
        raise ConfigError(
            f"refusing to listen on {server.host}, which is reachable from other machines, "
            "without configured auth (auth.token or auth.username/password) and a configured "
            "certificate (server.tls.cert/key); use --host 127.0.0.1 for local development"
        )
    dev_ca = token_file = None
    certificates: CertificateFiles | None = None
    if behind_proxy:
        pass
    elif server.tls.cert and server.tls.key:
        certificates = CertificateFiles(server.tls.cert, server.tls.key)
    else:
        certificates = dev_certificates(settings.data_dir)
        dev_ca = certificates.ca
    if not settings.auth.configured:
        if settings.auth.type == "basic":
            raise ConfigError("auth.type is basic but auth.username/auth.password are not set")
        auth = AuthSettings(type="bearer", token=dev_token(settings.data_dir))
        settings = dataclasses.replace(settings, auth=auth)
        token_file = settings.data_dir / DEV_TOKEN_FILE
    if certificates is not None:
        server_context(certificates)  # fail now, with one line, if the files are unusable
        if problem := tlsproto.incompatibility():
            raise ConfigError(
                f"this Python's TLS layer is not the one tcwebhook serve was built for "
                f"({problem}); run it on a tested Python ({TESTED_PYTHONS})"
            )
    return ServePlan(settings, certificates, dev_ca, token_file)
