"""A small PKI for the TLS scenarios: root → intermediate → leaf, and the odd broken variant.

Keys are made once per session (EC where the scenario allows; RSA only for the RSA scenarios)
so the whole module stays fast.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

NOW = dt.datetime.now(dt.UTC)
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass
class Keys:
    root: PrivateKey
    intermediate: PrivateKey
    leaf: PrivateKey
    other: PrivateKey
    rsa2048: PrivateKey
    rsa1024: PrivateKey


@dataclass
class Issued:
    certificate: x509.Certificate
    key: PrivateKey

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tcwebhook tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def make_ca(
    common_name: str, key: PrivateKey, issuer: Issued | None = None, days: int = 3650
) -> Issued:
    signer_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer.certificate.subject if issuer else _name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()),
            critical=False,
        )
    )
    return Issued(builder.sign(signer_key, hashes.SHA256()), key)


def make_leaf(
    issuer: Issued,
    key: PrivateKey,
    names: tuple[str, ...] = ("localhost", "127.0.0.1"),
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    self_signed: bool = False,
    aia: bool = True,
) -> Issued:
    subject = _name(names[0])
    sans: list[x509.GeneralName] = []
    for name in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    signer_key = key if self_signed else issuer.key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if self_signed else issuer.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - dt.timedelta(days=1))
        .not_valid_after(not_after or NOW + dt.timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()),
            critical=False,
        )
    )
    if aia and not self_signed:
        # Like every public CA: say where the issuer can be downloaded (browsers follow it).
        builder = builder.add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.CA_ISSUERS,
                        x509.UniformResourceIdentifier("http://ca.invalid/intermediate.crt"),
                    )
                ]
            ),
            critical=False,
        )
    return Issued(builder.sign(signer_key, hashes.SHA256()), key)


@dataclass
class Pki:
    root: Issued
    intermediate: Issued
    leaf: Issued
    directory: Path
    keys: Keys

    @property
    def root_file(self) -> Path:
        return self.write("root.pem", self.root.pem)

    def write(self, name: str, *parts: bytes) -> Path:
        path = self.directory / name
        path.write_bytes(b"".join(parts))
        return path

    def leaf_with(self, key: PrivateKey | None = None, **kwargs: object) -> Issued:
        return make_leaf(self.intermediate, key or self.keys.leaf, **kwargs)  # type: ignore[arg-type]


def sign_with_sha1(pki: Pki) -> Issued:
    """A leaf signed with ecdsa-with-SHA1 by the intermediate: cryptography refuses, openssl can."""
    directory = pki.directory
    key_file = pki.write("sha1-leaf.key", Issued(pki.leaf.certificate, pki.keys.leaf).key_pem)
    ca_file = pki.write("int.pem", pki.intermediate.pem)
    ca_key = pki.write("int.key", pki.intermediate.key_pem)
    extensions = pki.write(
        "sha1.ext",
        b"subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n",
    )
    csr = subprocess.run(
        ["openssl", "req", "-new", "-key", str(key_file), "-subj", "/CN=localhost"],
        check=True,
        capture_output=True,
    ).stdout
    cert = subprocess.run(
        [
            "openssl",
            "x509",
            "-req",
            "-CA",
            str(ca_file),
            "-CAkey",
            str(ca_key),
            "-CAcreateserial",
            "-CAserial",
            str(directory / "int.srl"),
            "-days",
            "30",
            "-sha1",
            "-extfile",
            str(extensions),
        ],
        input=csr,
        check=True,
        capture_output=True,
    ).stdout
    return Issued(x509.load_pem_x509_certificate(cert), pki.keys.leaf)


def make_dsa_leaf(pki: Pki) -> x509.Certificate:
    """A leaf with a DSA key, signed by the intermediate (only its public key is ever needed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the test builds what the product must only recognise
        from cryptography.hazmat.primitives.asymmetric import dsa

        key = dsa.generate_private_key(2048)
        return (
            x509.CertificateBuilder()
            .subject_name(pki.leaf.certificate.subject)
            .issuer_name(pki.intermediate.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=30))
            .sign(pki.intermediate.key, hashes.SHA256())
        )
