"""Does a certificate name this host? RFC 6125 matching, as OpenSSL and the JVM do it."""

from __future__ import annotations

import ipaddress

from cryptography import x509
from cryptography.x509.oid import NameOID


def parse_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def certificate_names(certificate: x509.Certificate) -> list[str]:
    """The DNS names and IP addresses the certificate is for (CN only when there is no SAN)."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    names: list[str] = []
    if san is not None:
        names += san.get_values_for_type(x509.DNSName)
        names += [str(address) for address in san.get_values_for_type(x509.IPAddress)]
    if not names:
        names += [
            str(attribute.value)
            for attribute in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        ]
    return names


def matches(certificate: x509.Certificate, host: str) -> bool:
    """True when ``host`` (a DNS name or an IP address) is one the certificate is issued for."""
    address = parse_ip(host)
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    if address is not None:
        # IP addresses match only iPAddress entries, never DNS names or the CN (RFC 6125 §1.7.2).
        return san is not None and address in san.get_values_for_type(x509.IPAddress)
    dns_names = san.get_values_for_type(x509.DNSName) if san is not None else []
    if not dns_names:
        # Legacy fallback that OpenSSL and the JVM still apply when there is no DNS SAN.
        dns_names = [
            str(attribute.value)
            for attribute in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        ]
    wanted = _normalise(host)
    return any(dns_name_matches(_normalise(pattern), wanted) for pattern in dns_names)


def dns_name_matches(pattern: str, host: str) -> bool:
    """Exact match, or a wildcard that is the whole leftmost label and covers exactly one label."""
    if pattern == host:
        return True
    if not pattern.startswith("*."):
        return False
    suffix = pattern[2:]
    # "*.com" would cover a whole public suffix; CAs may not issue it and clients refuse it.
    if "*" in suffix or suffix.count(".") < 1:
        return False
    label, _, rest = host.partition(".")
    return bool(label) and rest == suffix


def _normalise(name: str) -> str:
    return name.strip().rstrip(".").lower()
