"""``tcwebhook check-tls``: will Tradecloud's sender be able to deliver to this endpoint?"""

from __future__ import annotations

from pathlib import Path

import typer

from tcwebhook.cli.common import JsonOption
from tcwebhook.errors import UsageError


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("check-tls")(check_tls_command)


def check_tls_command(
    target: str = typer.Argument(
        None,
        help="https://host\\[:port]\\[/path] or host\\[:port] (default port 443).",
        show_default=False,
    ),
    ca_file: Path = typer.Option(
        None,
        "--ca-file",
        help="Also trust this CA (PEM), for private or test CAs.",
        show_default=False,
        dir_okay=False,
    ),
    servername: str = typer.Option(
        None,
        "--servername",
        help="Name for SNI and hostname verification (when TARGET is an IP).",
        show_default=False,
    ),
    timeout: float = typer.Option(
        10.0, "--timeout", min=0.1, help="Overall deadline for all probes, in seconds."
    ),
    warn_days: int = typer.Option(
        30, "--warn-days", min=0, help="Warn when a certificate expires within this many days."
    ),
    strict: bool = typer.Option(False, "--strict", help="Treat warnings as failures (exit 1)."),
    json_output: bool = JsonOption,
    token: str = typer.Option(
        None,
        "--token",
        envvar="TCWEBHOOK_CHECK_TOKEN",
        help="Bearer token the endpoint expects; needed to check the URL path.",
        show_default=False,
    ),
    user: str = typer.Option(
        None,
        "--user",
        help="Basic-auth user name the endpoint expects; needed to check the URL path.",
        show_default=False,
    ),
    password: str = typer.Option(
        None,
        "--password",
        envvar="TCWEBHOOK_CHECK_PASSWORD",
        help="Basic-auth password.",
        show_default=False,
    ),
    no_endpoint: bool = typer.Option(
        False, "--no-endpoint", help="Skip the HTTP request to the endpoint."
    ),
    http_port: int = typer.Option(
        80, "--http-port", min=1, max=65535, help="Port probed for plain HTTP on the same host."
    ),
    cert: Path = typer.Option(
        None,
        "--cert",
        help="Check this PEM certificate file instead of a server (no network).",
        show_default=False,
        dir_okay=False,
    ),
    key: Path = typer.Option(
        None,
        "--key",
        help="With --cert: the private key that must match it.",
        show_default=False,
        dir_okay=False,
    ),
    chain: Path = typer.Option(
        None,
        "--chain",
        help="With --cert: the intermediate certificates (PEM).",
        show_default=False,
        dir_okay=False,
    ),
) -> None:
    """Check that an HTTPS endpoint meets Tradecloud's TLS requirements, and say what to fix.

    Exit codes: 0 pass, 1 failed (or warned, with --strict), 2 could not check.
    """
    from tcwebhook import console
    from tcwebhook.cli import check_tls_output
    from tcwebhook.tlscheck import CheckOptions, Credentials, check_files, check_tls

    if token and user:
        raise UsageError("give either --token or --user/--password, not both")
    if password is not None and user is None:
        raise UsageError("--password needs --user")
    if cert is None and (key is not None or chain is not None):
        raise UsageError("--key and --chain need --cert FILE")
    if (cert is None) == (target is None):
        raise UsageError(
            "give either a TARGET (https://host[:port][/path]) or --cert FILE, "
            "see tcwebhook check-tls --help"
        )
    options = CheckOptions(
        ca_file=ca_file,
        servername=servername,
        timeout=timeout,
        warn_days=warn_days,
        endpoint=not no_endpoint,
        credentials=Credentials(token=token, user=user, password=password),
        http_port=http_port,
    )
    if cert is not None:
        report = check_files(cert, key, chain, options)
    else:
        report = check_tls(target, options)
    if json_output:
        console.print_json(report.to_dict())
    else:
        check_tls_output.render(report, console.stdout(), strict=strict)
    raise typer.Exit(report.exit_code(strict))
