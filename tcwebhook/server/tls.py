"""TLS for the receiver: a TLS 1.2+ server context, and the local development CA."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from tcwebhook.datadir import DEV_CA_FILE, DEV_CERT_FILE, DEV_KEY_FILE, writable, write_private
from tcwebhook.errors import ConfigError

DEV_HOSTNAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class CertificateFiles:
    cert: Path
    key: Path
    ca: Path | None = None  # set for the development CA, which clients must be told to trust


def server_context(files: CertificateFiles) -> ssl.SSLContext:
    """Server-side context that accepts TLS 1.2 and 1.3 and nothing older (Tradecloud's rule)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.set_alpn_protocols(["http/1.1"])
    for path in (files.cert, files.key):
        if not path.is_file():
            what = "a directory, not a file" if path.is_dir() else "no such file"
            raise ConfigError(
                f"server.tls: cannot read {path}: {what}; "
                "set server.tls.cert and server.tls.key to your PEM files"
            )
    try:
        context.load_cert_chain(files.cert, files.key)
    except PermissionError:
        raise ConfigError(
            f"server.tls: cannot read {files.cert} or {files.key}: permission denied"
        ) from None
    except ssl.SSLError as exc:
        raise ConfigError(
            f"server.tls: {files.cert} and {files.key} are not a usable PEM certificate chain "
            f"and matching private key ({exc.reason or exc})"
        ) from None
    return context


def dev_certificates(data_dir: Path) -> CertificateFiles:
    """The development CA and a localhost certificate under ``data_dir``; made once, then reused."""
    files = CertificateFiles(
        data_dir / DEV_CERT_FILE, data_dir / DEV_KEY_FILE, data_dir / DEV_CA_FILE
    )
    if all(path.is_file() for path in (files.cert, files.key, files.ca)) and _loads(files):  # type: ignore[union-attr]
        return files
    import trustme

    ca = trustme.CA(organization_name="tcwebhook development CA")
    leaf = ca.issue_cert(*DEV_HOSTNAMES)
    assert files.ca is not None
    with writable(data_dir):
        ca.cert_pem.write_to_path(str(files.ca))
        files.cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        write_private(files.key, leaf.private_key_pem.bytes())
    return files


def _loads(files: CertificateFiles) -> bool:
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(files.cert, files.key)
    except (ssl.SSLError, OSError):
        return False
    return True
