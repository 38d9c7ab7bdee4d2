"""Key and signature: key sizes and algorithms, and the hashes the certificates are signed with."""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tcwebhook.tlscheck import certs
from tcwebhook.tlscheck.report import Check, Status

WEAK_HASHES = {"md2", "md5", "sha1"}


def key_signature_check(chain: Sequence[x509.Certificate]) -> Check:
    if not chain:
        return Check("key-signature", "Key and signature", Status.INFO, "no certificates received")
    leaf = chain[0]
    problems: list[str] = []
    for certificate in chain:
        root = certs.is_self_signed(certificate) and certificate is not leaf
        label = f"{certs.role(certificate, leaf)} {certs.display_name(certificate.subject)!r}"
        weakness = _key_weakness(certificate)
        if weakness:
            problems.append(f"{label} has {weakness}")
        # A root's signature on itself is never checked by anyone, so its hash does not matter.
        hash_name = certs.signature_hash_name(certificate)
        if not root and hash_name in WEAK_HASHES:
            problems.append(f"{label} is signed with {certs.signature_description(certificate)}")
    if problems:
        return Check(
            "key-signature",
            "Key and signature",
            Status.FAIL,
            "; ".join(problems) + "; no public CA issues these any more, so this is a policy "
            "failure even where a JVM would still accept it from a private CA",
            "reissue with an RSA key of at least 2048 bits or an EC P-256/P-384 key, "
            "signed with SHA-256 or better",
        )
    return Check(
        "key-signature",
        "Key and signature",
        Status.PASS,
        f"{certs.key_description(leaf)} key, {certs.signature_description(leaf)}",
    )


def _key_weakness(certificate: x509.Certificate) -> str | None:
    if certs.uses_dsa(certificate):
        return "a DSA key (no longer issued or accepted by browsers)"
    key = certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        return f"a {key.key_size}-bit RSA key (minimum 2048)"
    if isinstance(key, ec.EllipticCurvePublicKey) and key.key_size < 256:
        return f"a {key.key_size}-bit EC key (minimum 256)"
    return None
