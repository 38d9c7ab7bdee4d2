"""``tcwebhook replay``: send events to a webhook exactly as Tradecloud does."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path

import typer

from tcwebhook.cli.common import ConfigOption, JsonOption
from tcwebhook.errors import UsageError


class ReplayMethod(StrEnum):
    """The HTTP methods Tradecloud sends webhooks with: POST (current) or GET (legacy)."""

    POST = "POST"
    GET = "GET"


class BodyFormatChoice(StrEnum):
    """What a webhook body is sent as: JSON, or tXML (order webhooks only)."""

    json = "json"
    xml = "xml"


class IdIn(StrEnum):
    """Where a legacy GET notification carries the object's id: in the path or the query."""

    path = "path"
    query = "query"


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("replay", no_args_is_help=True)(replay_command)


def replay_command(
    sources: list[str] = typer.Argument(
        ...,
        metavar="SOURCE...",
        help="A JSON or tXML file, a directory (its *.json and *.xml in name order), "
        "'-' (stdin) or a sample name.",
        show_default=False,
    ),
    url: str | None = typer.Option(
        None,
        "--url",
        help="Webhook URL as entered in the Tradecloud portal "
        "(default: the local 'tcwebhook serve' of this configuration).",
        show_default=False,
    ),
    token: str | None = typer.Option(
        None, "--token", help="Send 'Authorization: Bearer TOKEN'.", show_default=False
    ),
    bearer_command: str | None = typer.Option(
        None,
        "--bearer-from-command",
        metavar="CMD",
        help="Send 'Authorization: Bearer' with the token CMD prints (e.g. an Entra token "
        "from 'az account get-access-token --query accessToken -o tsv').",
        show_default=False,
    ),
    user: str | None = typer.Option(None, "--user", help="Basic auth user.", show_default=False),
    password: str | None = typer.Option(
        None, "--password", help="Basic auth password.", show_default=False
    ),
    ca_file: Path | None = typer.Option(
        None,
        "--ca-file",
        help="Trust this CA (PEM) for the server certificate.",
        show_default=False,
    ),
    insecure: bool = typer.Option(
        False, "--insecure", help="Do not verify the server certificate (prints a warning)."
    ),
    method: ReplayMethod = typer.Option(
        ReplayMethod.POST,
        "--method",
        case_sensitive=False,
        metavar="<POST|GET>",
        help="POST (current) or GET (legacy notification with the id only).",
    ),
    id_in: IdIn = typer.Option(
        IdIn.path, "--id-in", help="GET only: put the id in the 'path' or 'query'."
    ),
    body_format: BodyFormatChoice | None = typer.Option(
        None,
        "--format",
        case_sensitive=False,
        metavar="<json|xml>",
        help="Send bodies as JSON or as tXML (Content-Type: application/xml; order webhooks "
        "only). Default: each source as it is, samples as JSON.",
        show_default=False,
    ),
    fresh_ids: bool = typer.Option(
        False, "--fresh-ids", help="Give every event a new meta.messageId."
    ),
    assignments: list[str] | None = typer.Option(
        None,
        "--set",
        help="Override a field: dotted PATH=VALUE, VALUE as JSON (repeatable), "
        "e.g. --set eventName=OrderLinesRejectedBySupplier.",
        show_default=False,
    ),
    show_response: bool = typer.Option(False, "--show-response", help="Print response bodies."),
    retry: bool = typer.Option(
        False, "--retry", help="Retry >500 and connection errors with back-off, like Tradecloud."
    ),
    max_attempts: int = typer.Option(5, "--max-attempts", help="Attempts per event with --retry."),
    max_delay: float = typer.Option(
        30.0, "--max-delay", help="Longest back-off wait in seconds with --retry."
    ),
    count: int | None = typer.Option(
        None, "--count", help="Load mode: send this many events (fresh ids), cycling the sources."
    ),
    concurrency: int = typer.Option(1, "--concurrency", help="Requests in flight at once."),
    timeout: float = typer.Option(30.0, "--timeout", help="Seconds to wait for each answer."),
    json_output: bool = JsonOption,
    config: Path | None = ConfigOption,
) -> None:
    """Send events exactly as Tradecloud does, and say what Tradecloud would do with each answer.

    Exit code 0 when every event was delivered (2xx), 1 when any was not, 2 for usage and
    environment errors.
    """
    from tcwebhook.backoff import TRADECLOUD_SENDER
    from tcwebhook.cli import replay_output
    from tcwebhook.cli.common import load, run
    from tcwebhook.errors import EXIT_CHECK_FAILED
    from tcwebhook.replay import (
        ReplayOptions,
        RetryPolicy,
        bearer_from_command,
        load_sources,
        parse_assignment,
        replay,
        resolve_target,
    )

    options = ReplayOptions(
        fresh_ids=fresh_ids,
        assignments=tuple(parse_assignment(text) for text in assignments or ()),
        count=count,
        concurrency=concurrency,
        retry=RetryPolicy(retry, max_attempts, min(TRADECLOUD_SENDER.base, max_delay), max_delay),
        timeout=timeout,
        keep_response=show_response or json_output,
        body_format=None if body_format is None else body_format.value,
    )
    if bearer_command is not None:
        if token:
            raise UsageError("give either --token or --bearer-from-command, not both")
        token = bearer_from_command(bearer_command)
    settings = load(config)
    stdin = sys.stdin.buffer if "-" in sources else None
    loaded = load_sources(sources, stdin, store_url=settings.store_url)
    target = resolve_target(
        settings,
        url=url,
        token=token,
        user=user,
        password=password,
        ca_file=ca_file,
        insecure=insecure,
        method="POST" if method is ReplayMethod.POST else "GET",
        id_in="path" if id_in is IdIn.path else "query",
    )
    if insecure:
        replay_output.warn_insecure()
    load_mode = count is not None
    if load_mode and not json_output:
        with replay_output.progress(count or 0) as advance:
            report = run(replay(loaded, target, options, advance))
    else:
        print_result = None if json_output else replay_output.printer(show_response)
        report = run(replay(loaded, target, options, print_result))
    replay_output.render(report, json_output, show_response, summary=load_mode)
    if not report.all_delivered:
        raise typer.Exit(EXIT_CHECK_FAILED)
