"""The trust anchors: the system store that Python's ssl uses, plus an optional extra CA file."""

from __future__ import annotations

import os
import ssl
import warnings
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from tcwebhook.errors import TlsCheckError
from tcwebhook.tlscheck import certs


@dataclass(frozen=True)
class TrustStore:
    """Trusted certificates indexed by subject, for issuer look-ups."""

    anchors: tuple[x509.Certificate, ...]
    source: str
    has_extra_ca: bool = False

    def issuer_of(self, certificate: x509.Certificate) -> x509.Certificate | None:
        return certs.find_issuer(certificate, self._candidates(certificate.issuer))

    def contains(self, certificate: x509.Certificate) -> bool:
        return any(
            certs.same_certificate(certificate, anchor)
            for anchor in self._candidates(certificate.subject)
        )

    def _candidates(self, name: x509.Name) -> list[x509.Certificate]:
        return [anchor for anchor in self.anchors if anchor.subject == name]


def system_ca_paths() -> tuple[Path | None, Path | None]:
    """The CA file and directory OpenSSL would use, honouring SSL_CERT_FILE and SSL_CERT_DIR."""
    paths = ssl.get_default_verify_paths()
    cafile = os.environ.get(paths.openssl_cafile_env) or paths.cafile or paths.openssl_cafile
    capath = os.environ.get(paths.openssl_capath_env) or paths.capath or paths.openssl_capath
    return (Path(cafile) if cafile else None, Path(capath) if capath else None)


def load_trust_store(ca_file: Path | None = None, use_system: bool = True) -> TrustStore:
    """System anchors (unless disabled) plus every certificate in ``ca_file``."""
    anchors: list[x509.Certificate] = []
    sources: list[str] = []
    if use_system:
        cafile, capath = system_ca_paths()
        if cafile is not None and cafile.is_file():
            anchors += _load_system_file(cafile)
            sources.append("system trust store")
        elif capath is not None and capath.is_dir():
            anchors += _load_directory(capath)
            sources.append("system trust store")
    if ca_file is not None:
        anchors += load_ca_file(ca_file)
        sources.append(str(ca_file))
    return TrustStore(
        tuple(anchors), " + ".join(sources) or "no trust anchors", has_extra_ca=ca_file is not None
    )


def load_ca_file(path: Path) -> list[x509.Certificate]:
    try:
        found = certs.load_pem_certificates(path.read_bytes())
    except OSError as exc:
        raise TlsCheckError(
            f"cannot read the CA file {path}: {exc.strerror or exc}; pass an existing PEM file "
            "to --ca-file"
        ) from exc
    except ValueError as exc:
        raise TlsCheckError(f"the CA file {path} is not valid PEM: {exc}") from exc
    if not found:
        raise TlsCheckError(
            f"the CA file {path} holds no PEM certificate; pass the CA's certificate "
            "(-----BEGIN CERTIFICATE-----) to --ca-file"
        )
    return found


def _load_system_file(path: Path) -> list[x509.Certificate]:
    with warnings.catch_warnings():
        # Some long-lived public roots have non-positive serial numbers; OpenSSL accepts them and
        # cryptography merely warns, which is not the user's business here.
        warnings.simplefilter("ignore")
        return certs.load_pem_certificates(path.read_bytes())


def _load_directory(directory: Path) -> list[x509.Certificate]:
    found: list[x509.Certificate] = []
    for path in sorted(directory.iterdir()):
        if path.suffix in {".pem", ".crt"} or path.name.endswith(".0"):
            try:
                found += _load_system_file(path)
            except (OSError, ValueError):
                continue  # unreadable entries are skipped, as OpenSSL does
    return found
