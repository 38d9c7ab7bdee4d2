"""Does an HTTPS endpoint meet Tradecloud's TLS requirements? Probes, rules and a report."""

from __future__ import annotations

from tcwebhook.tlscheck.check import CheckOptions, check_files, check_tls
from tcwebhook.tlscheck.probes import Credentials
from tcwebhook.tlscheck.report import CertificateInfo, Check, Report, ReportStatus, Status

__all__ = [
    "CertificateInfo",
    "Check",
    "CheckOptions",
    "Credentials",
    "Report",
    "ReportStatus",
    "Status",
    "check_files",
    "check_tls",
]
