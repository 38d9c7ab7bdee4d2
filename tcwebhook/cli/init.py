"""``tcwebhook init``: ask the few questions that matter, write the configuration, say what to
enter in the Tradecloud portal, and check what can be checked already."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

import typer

from tcwebhook.cli.common import JsonOption
from tcwebhook.errors import UsageError
from tcwebhook.init import (
    Answers,
    AuthKind,
    DeliveryMode,
    Entra,
    Method,
    Tls,
    render_config,
    write_config,
)

E = TypeVar("E", bound=StrEnum)


class Webhook(StrEnum):
    """How Tradecloud calls one webhook, or not at all."""

    post = "post"
    get = "get"
    off = "off"


def register(app: typer.Typer) -> None:
    app.command("init")(init_command)


def init_command(
    config: Path = typer.Option(
        Path("tcwebhook.yaml"), "--config", "-c", help="The configuration file to write."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing configuration file."),
    non_interactive: bool = typer.Option(
        False, "--non-interactive", help="Ask nothing: take the flags and the defaults."
    ),
    public_url: str | None = typer.Option(
        None,
        "--public-url",
        help="https://host\\[:port]\\[/prefix] at which Tradecloud will reach this receiver.",
        show_default=False,
    ),
    auth: AuthKind | None = typer.Option(
        None, "--auth", help="How Tradecloud authenticates.", show_default="bearer"
    ),
    tls: Tls | None = typer.Option(
        None,
        "--tls",
        help="files: your certificate; proxy: a reverse proxy here ends TLS; development: "
        "the generated CA (local tests only).",
        show_default="files with --cert, else proxy",
    ),
    cert: Path | None = typer.Option(
        None, "--cert", help="Certificate chain (PEM) for --tls files.", show_default=False
    ),
    key: Path | None = typer.Option(
        None, "--key", help="Its private key (PEM) for --tls files.", show_default=False
    ),
    port: int | None = typer.Option(
        None,
        "--port",
        min=1,
        max=65535,
        help="Port serve listens on.",
        show_default="the public URL's (files), 8080 (proxy)",
    ),
    orders: Webhook = typer.Option(Webhook.post, "--orders", help="The order webhook."),
    documents: bool = typer.Option(
        True, "--documents/--no-documents", help="The order documents webhook (POST)."
    ),
    shipments: Webhook = typer.Option(Webhook.post, "--shipments", help="The shipment webhook."),
    delivery_mode: DeliveryMode = typer.Option(
        DeliveryMode.SCHEDULE,
        "--delivery-mode",
        help="What the ERP supports: several delivery lines per order line, or one.",
    ),
    username: str = typer.Option("tradecloud", "--username", help="User name for --auth basic."),
    entra_tenant: str | None = typer.Option(
        None, "--entra-tenant", help="Your directory (tenant) id.", show_default=False
    ),
    entra_audience: list[str] | None = typer.Option(
        None, "--entra-audience", help="Accepted token audience (App ID URI).", show_default=False
    ),
    entra_client_id: list[str] | None = typer.Option(
        None, "--entra-client-id", help="Tradecloud's client id.", show_default=False
    ),
    check: bool = typer.Option(
        True, "--check/--no-check", help="Check the certificate and the public URL when done."
    ),
    json_output: bool = JsonOption,
) -> None:
    """Write a tcwebhook.yaml with a generated secret and print what to enter in the portal.

    Exit codes: 0 written (and checked, where it could be), 1 written but a check failed,
    2 nothing written (a usage error or an existing file without --force).
    """
    # Here, not at the top: they load cryptography, which --help does not need.
    from tcwebhook.cli import init_output
    from tcwebhook.init_check import check_setup

    ask = _Asker(interactive=not non_interactive)
    if config.exists() and not force:
        raise UsageError(
            f"{config} exists already: pass --force to replace it, or --config OTHER.yaml"
        )
    url = public_url or ask.text(
        "Public URL at which Tradecloud reaches this receiver (https://...)", "--public-url"
    )
    chosen_tls = (
        tls
        or (Tls.FILES if cert else None)
        or ask.choice(
            "TLS: your certificate files, a reverse proxy on this machine, or development",
            Tls,
            Tls.FILES if not non_interactive else Tls.PROXY,
        )
    )
    if chosen_tls is Tls.FILES:
        cert = cert or Path(ask.text("Certificate chain file (PEM)", "--cert"))
        key = key or Path(ask.text("Private key file (PEM)", "--key"))
    chosen_auth = auth or ask.choice("Authentication", AuthKind, AuthKind.BEARER)
    entra = None
    if chosen_auth is AuthKind.ENTRA:
        entra = Entra(
            entra_tenant or ask.text("Entra tenant id", "--entra-tenant"),
            tuple(entra_audience or [ask.text("Accepted audience", "--entra-audience")]),
            tuple(entra_client_id or [ask.text("Tradecloud's client id", "--entra-client-id")]),
        )
    answers = Answers(
        url,
        auth=chosen_auth,
        tls=chosen_tls,
        cert=cert.resolve() if cert else None,
        key=key.resolve() if key else None,
        port=port,
        orders=_method(orders),
        documents=documents,
        shipments=_method(shipments),
        delivery_mode=delivery_mode,
        username=username,
        entra=entra,
    )
    write_config(config, render_config(answers), force)
    outcome = check_setup(answers, config.resolve()) if check else None
    if json_output:
        init_output.print_json(answers, config, outcome)
    else:
        init_output.render(answers, config, outcome)
    raise typer.Exit(1 if outcome is not None and outcome.failed else 0)


def _method(choice: Webhook) -> Method | None:
    return None if choice is Webhook.off else Method(choice.value.upper())


class _Asker:
    """Questions on a terminal; without one (or with --non-interactive) a missing answer is a
    usage error naming the flag, so a script never hangs on a prompt."""

    def __init__(self, interactive: bool) -> None:
        self.interactive = interactive and sys.stdin.isatty()
        self.wanted = interactive

    def text(self, question: str, flag: str) -> str:
        self._can_ask(flag)
        return str(typer.prompt(question)).strip()

    def choice(self, question: str, enum: type[E], default: E) -> E:
        if not self.interactive:
            return default
        values = [member.value for member in enum]
        while True:
            answer = str(typer.prompt(f"{question} [{'/'.join(values)}]", default=default.value))
            if answer.strip().lower() in values:
                return enum(answer.strip().lower())
            typer.echo(f"Please answer one of: {', '.join(values)}")

    def _can_ask(self, flag: str) -> None:
        if self.interactive:
            return
        if self.wanted:
            raise UsageError(f"no terminal to ask on: pass {flag} (and --non-interactive)")
        raise UsageError(f"--non-interactive needs {flag}")
