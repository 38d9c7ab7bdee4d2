"""TLS contexts tests need beyond the shared fixtures."""

from __future__ import annotations

import ssl
import warnings


def legacy_client_context(version: ssl.TLSVersion) -> ssl.SSLContext:
    """A client that offers only ``version`` (old versions need OpenSSL security level 0)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():  # the old versions are deprecated: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = version
        context.maximum_version = version
    return context
