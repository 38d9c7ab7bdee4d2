"""Pure helpers over X.509 certificates: describe them and find who issued whom."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509.oid import NameOID, PublicKeyAlgorithmOID

from tcwebhook.tlscheck.report import CertificateInfo

CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


def display_name(name: x509.Name) -> str:
    """The common name if there is one, else the whole RFC 4514 string."""
    common_names = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if common_names:
        return str(common_names[0].value)
    return name.rfc4514_string() or "(empty name)"


def uses_dsa(certificate: x509.Certificate) -> bool:
    """Recognised by the algorithm identifier alone: cryptography deprecates DSA key objects, and
    touching one (``public_key()``, a signature check) warns on every run of check-tls."""
    return certificate.public_key_algorithm_oid == PublicKeyAlgorithmOID.DSA


def key_description(certificate: x509.Certificate) -> str:
    if uses_dsa(certificate):
        return "DSA"
    key = certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size} bits"
    if isinstance(key, ec.EllipticCurvePublicKey):
        curve = CURVE_NAMES.get(key.curve.name, key.curve.name)
        return f"EC {curve} ({key.key_size} bits)"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448"
    return type(key).__name__


def signature_description(certificate: x509.Certificate) -> str:
    oid = certificate.signature_algorithm_oid
    return getattr(oid, "_name", None) or oid.dotted_string


def signature_hash_name(certificate: x509.Certificate) -> str | None:
    """'sha1', 'md5', 'sha256'... or None for hashless schemes (Ed25519) and unknown ones."""
    try:
        algorithm = certificate.signature_hash_algorithm
    except UnsupportedAlgorithm:
        # cryptography refuses to name some legacy hashes (MD5 on some builds): go by the OID name.
        name = signature_description(certificate).lower()
        for legacy in ("md5", "md2", "sha1"):
            if legacy in name:
                return legacy
        return None
    return algorithm.name if algorithm is not None else None


def not_before(certificate: x509.Certificate) -> datetime:
    return certificate.not_valid_before_utc


def not_after(certificate: x509.Certificate) -> datetime:
    return certificate.not_valid_after_utc


def is_ca(certificate: x509.Certificate) -> bool:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return False
    return constraints.value.ca


def has_ca_issuers_url(certificate: x509.Certificate) -> bool:
    """Whether the certificate says where to download its issuer (AIA caIssuers)."""
    try:
        access = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
    except x509.ExtensionNotFound:
        return False
    return any(
        description.access_method == x509.AuthorityInformationAccessOID.CA_ISSUERS
        for description in access.value
    )


def issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when ``issuer``'s name and key signed ``certificate``."""
    if certificate.issuer != issuer.subject:
        return False
    if uses_dsa(issuer):
        # The signature cannot be checked without cryptography's deprecated DSA API; the name is
        # enough to draw the chain, and the Key and signature row fails a DSA key anyway.
        return True
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, UnsupportedAlgorithm):
        # cryptography refuses legacy hashes (SHA-1, MD5) here; check the signature by hand so
        # that such a chain is still recognised, and the Key and signature row can name it.
        return _legacy_signature_valid(certificate, issuer)
    except (TypeError, InvalidSignature):
        return False
    return True


def _legacy_signature_valid(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    legacy_hashes: dict[str, hashes.HashAlgorithm] = {"sha1": hashes.SHA1(), "md5": hashes.MD5()}
    algorithm = legacy_hashes.get(signature_hash_name(certificate) or "")
    if algorithm is None:
        return False
    key = issuer.public_key()
    signed = certificate.tbs_certificate_bytes
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(certificate.signature, signed, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(certificate.signature, signed, ec.ECDSA(algorithm))
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        return False
    return True


def is_self_signed(certificate: x509.Certificate) -> bool:
    return issued_by(certificate, certificate)


def role(certificate: x509.Certificate, leaf: x509.Certificate) -> str:
    """How a finding names a certificate of the chain whose first certificate is ``leaf``."""
    if certificate is leaf:
        return "the certificate"
    if is_self_signed(certificate):
        return "the root"
    return "the intermediate"


def same_certificate(left: x509.Certificate, right: x509.Certificate) -> bool:
    """Same subject and key: a trust anchor matches even when re-issued with other dates."""
    if uses_dsa(left) or uses_dsa(right):
        return left == right
    return left.subject == right.subject and left.public_key() == right.public_key()


def find_issuer(
    certificate: x509.Certificate, candidates: Iterable[x509.Certificate]
) -> x509.Certificate | None:
    for candidate in candidates:
        if candidate is not certificate and issued_by(certificate, candidate):
            return candidate
    return None


def sha256_fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()


def describe(certificate: x509.Certificate) -> CertificateInfo:
    return CertificateInfo(
        subject=display_name(certificate.subject),
        issuer=display_name(certificate.issuer),
        not_before=not_before(certificate),
        not_after=not_after(certificate),
        key=key_description(certificate),
        signature=signature_description(certificate),
        sha256=sha256_fingerprint(certificate),
        self_signed=is_self_signed(certificate),
        is_ca=is_ca(certificate),
    )


def describe_chain(chain: Sequence[x509.Certificate]) -> tuple[CertificateInfo, ...]:
    return tuple(describe(certificate) for certificate in chain)


def utcnow() -> datetime:
    return datetime.now(UTC)


def load_pem_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle, in file order (empty list if there is none)."""
    if b"-----BEGIN CERTIFICATE-----" not in data:
        return []
    return x509.load_pem_x509_certificates(data)
