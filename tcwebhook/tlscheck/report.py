"""The result of a TLS check: plain data, rendered elsewhere (table or JSON)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    INFO = "info"


class ReportStatus(StrEnum):
    """The whole report's result (the JSON "verdict"): its worst row, INFO rows aside."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Check:
    """One row of the report: what was checked, how it went, and how to fix it."""

    id: str
    title: str
    status: Status
    finding: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "status": str(self.status), "finding": self.finding, "fix": self.fix}


@dataclass(frozen=True)
class CertificateInfo:
    """One certificate as the server sent it (or as found in the files)."""

    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    key: str
    signature: str
    sha256: str
    self_signed: bool
    is_ca: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "key": self.key,
            "signature": self.signature,
            "sha256": self.sha256,
            "self_signed": self.self_signed,
            "ca": self.is_ca,
        }


@dataclass(frozen=True)
class Report:
    """Every check's row plus the chain as received."""

    target: str
    checks: tuple[Check, ...]
    chain: tuple[CertificateInfo, ...] = ()
    elapsed_seconds: float = 0.0
    notes: tuple[str, ...] = field(default=())
    from_files: bool = False  # --cert mode: the target names PEM files, not a server

    @property
    def verdict(self) -> ReportStatus:
        statuses = {check.status for check in self.checks}
        if Status.FAIL in statuses:
            return ReportStatus.FAIL
        if Status.WARN in statuses:
            return ReportStatus.WARN
        return ReportStatus.PASS

    def check(self, check_id: str) -> Check:
        """The row with this id (KeyError if the check did not run)."""
        for check in self.checks:
            if check.id == check_id:
                return check
        raise KeyError(check_id)

    def exit_code(self, strict: bool = False) -> int:
        """0 = pass (warnings allowed unless strict), 1 = failed."""
        if self.verdict is ReportStatus.FAIL or (strict and self.verdict is ReportStatus.WARN):
            return 1
        return 0

    def to_dict(self) -> dict[str, Any]:
        """The stable --json schema documented in the README."""
        return {
            "target": self.target,
            "verdict": str(self.verdict),
            "checks": [check.to_dict() for check in self.checks],
            "chain": [certificate.to_dict() for certificate in self.chain],
        }
