"""Key pair (file mode): does the private key belong to the certificate?"""

from __future__ import annotations

from cryptography import x509

from tcwebhook.tlscheck import certs
from tcwebhook.tlscheck.report import Check, Status


def key_match_check(certificate: x509.Certificate, key: object | None) -> Check:
    if key is None:
        return Check("key-match", "Key matches", Status.INFO, "no --key given")
    if certs.uses_dsa(certificate):
        return Check("key-match", "Key matches", Status.INFO, "a DSA certificate: not compared")
    public = getattr(key, "public_key", None)
    if public is not None and public() == certificate.public_key():
        return Check(
            "key-match", "Key matches", Status.PASS, "the private key matches the certificate"
        )
    return Check(
        "key-match",
        "Key matches",
        Status.FAIL,
        "the private key does not belong to the certificate; the server would fail to start or "
        "every handshake would fail",
        "pair the certificate with the key it was issued for (compare their public keys)",
    )
