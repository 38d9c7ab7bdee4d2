"""The client-side TLS context every outgoing connection uses."""

from __future__ import annotations

import ssl
from pathlib import Path

from tcwebhook.errors import ConfigError


def client_context(ca_file: Path | None, where: str = "--ca-file") -> ssl.SSLContext:
    """Verify like Tradecloud's sender: the system trust store (honouring $SSL_CERT_FILE) plus
    ``ca_file``, hostname checked, TLS 1.2 or newer; no missing intermediates are fetched."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise ConfigError(
                f"cannot load the CA file {ca_file} ({where}): {reason}; "
                "give a PEM file with the CA certificate"
            ) from None
    return context
