"""What ``tcwebhook init`` can check right after writing the configuration: the certificate
files (no network), then the public URL when it answers — the same checks as ``check-tls``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tcwebhook.errors import TlsCheckError
from tcwebhook.init import DEFAULT_PATHS, Answers, AuthKind, Tls
from tcwebhook.tlscheck import CheckOptions, Credentials, Report, check_files, check_tls

URL_TIMEOUT = 8.0  # seconds for every probe of the public URL together


@dataclass
class SetupCheck:
    files: Report | None = None  # the certificate and key files (--tls files)
    url: Report | None = None  # the public URL, when it answered
    unreachable: str | None = None  # why the public URL could not be checked
    left_to_do: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(report is not None and report.exit_code() for report in (self.files, self.url))


def check_setup(answers: Answers, config: Path) -> SetupCheck:
    outcome = SetupCheck()
    if answers.tls is Tls.FILES:
        assert answers.cert is not None
        try:
            outcome.files = check_files(answers.cert, answers.key, None, CheckOptions())
        except TlsCheckError as exc:
            outcome.left_to_do.append(f"fix the certificate files: {exc}")
    if answers.tls is Tls.DEVELOPMENT:
        # The generated CA is not trusted by check-tls either: nothing to learn from the URL.
        outcome.left_to_do.append(
            "the development certificate is for local tests only: Tradecloud rejects it "
            "(self-signed); rerun init with --tls files or --tls proxy for real deliveries"
        )
    else:
        _check_url(answers, config, outcome)
    if answers.tls is Tls.PROXY:
        outcome.left_to_do.append(
            f"point your reverse proxy's {answers.base}/ at http://127.0.0.1:{answers.listen_port} "
            "(it must end TLS 1.2 or 1.3 with a publicly trusted certificate)"
        )
    outcome.left_to_do.append("enter the values above in the Tradecloud portal and save")
    return outcome


def _check_url(answers: Answers, config: Path, outcome: SetupCheck) -> None:
    webhook = "order" if answers.orders or answers.documents else "shipment"
    target = answers.base + DEFAULT_PATHS[webhook]
    options = CheckOptions(timeout=URL_TIMEOUT, credentials=_credentials(answers))
    try:
        outcome.url = check_tls(target, options)
    except TlsCheckError as exc:
        outcome.unreachable = str(exc)
        credentials = "--user/--password" if answers.auth is AuthKind.BASIC else "--token"
        outcome.left_to_do.append(
            f"start the receiver with 'tcwebhook serve --config {config}', make {answers.base} "
            f"reachable from the internet, then run 'tcwebhook check-tls {target} "
            f"{credentials} ...' with the secret above"
        )


def _credentials(answers: Answers) -> Credentials:
    if answers.auth is AuthKind.BASIC:
        return Credentials(user=answers.username, password=answers.password)
    if answers.auth is AuthKind.ENTRA:
        return Credentials()  # an Entra token cannot be made here: the check stays anonymous
    return Credentials(token=answers.token)
