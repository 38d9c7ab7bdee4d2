"""``tcwebhook reconcile`` as a real subprocess against the fake API: output and exit codes."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from rich.console import Console

from tcwebhook.cli.reconcile_output import render
from tcwebhook.reconcile import EndpointResult, ReconcileReport, RecoveredChange
from tests.helpers.cli import one_error_line
from tests.helpers.fake_tradecloud import FakeTradecloud
from tests.helpers.reconcile import T, order, put, shipment, stamp

CliRunner = Callable[..., Awaitable[Any]]


async def test_usage_error_is_exit_2_and_an_api_error_exit_1(
    cli: CliRunner, fake_api: FakeTradecloud
) -> None:
    result = await cli("reconcile")
    assert result.code == 2
    assert "--since" in one_error_line(result.stderr)

    put(fake_api, order(1, stamp(1)))
    fake_api.fail_next["order-poll"] = [400]
    result = await cli("reconcile", "--since", T, "--no-shipments")
    assert result.code == 1
    assert "HTTP 400" in one_error_line(result.stderr)
    assert "INCOMPLETE" in result.stdout


async def test_json_check_then_nothing_missing(cli: CliRunner, fake_api: FakeTradecloud) -> None:
    put(fake_api, order(1, stamp(1)), order(2, stamp(2)), shipment(1, stamp(3)))
    first = await cli("reconcile", "--since", T, "--json", "--check")
    assert first.code == 1, first.stderr  # --check: something was missing
    report = json.loads(first.stdout)
    assert (report["ok"], report["polled"], report["recovered"]) == (True, 3, 3)
    assert report["recovered_by_kind"] == {"order_recovered": 2, "shipment_recovered": 1}
    orders = report["endpoints"][0]
    assert orders["endpoint"] == "order-search/poll" and orders["cursor_after"] == stamp(2)
    assert {event["number"] for event in orders["events"]} == {"PO000001", "PO000002"}

    again = await cli("reconcile", "--check")  # from the cursors
    assert again.code == 0, again.stderr
    assert "OK" in again.stdout and "nothing missing" in again.stdout

    listed = await cli("events", "list", "--kind", "order_recovered", "--json", api=False)
    assert listed.code == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 2


def test_dry_run_table_shows_payload_values_as_text() -> None:
    report = ReconcileReport("2026-01-01T00:00:00.000Z", True, "cli")
    result = EndpointResult("order-search/poll", "order_recovered", T, None, polled=1)
    result.recovered.append(
        RecoveredChange(
            "order_recovered", "id-1", "[bold]PO1[/bold]", stamp(1), ("0001",), "m", None
        )
    )
    result.complete = True
    report.endpoints.append(result)
    console = Console(record=True, width=200)
    render(report, console)
    text = console.export_text()
    assert "[bold]PO1[/bold]" in text  # shown, not interpreted as markup
    assert "Would recover" in text and "would be recovered (dry run)" in text


def test_reconcile_every_is_a_duration_of_at_least_a_minute() -> None:
    import pytest

    from tcwebhook.config import ReconcileSettings
    from tcwebhook.errors import ConfigError

    assert ReconcileSettings().interval_seconds is None
    assert ReconcileSettings(every="off").interval_seconds is None
    assert ReconcileSettings(every="15m").interval_seconds == 900
    assert ReconcileSettings(every="2h").interval_seconds == 7200
    for bad in ("30s", "soon", "15 minutes"):
        with pytest.raises(ConfigError, match=r"reconcile\.every"):
            ReconcileSettings(every=bad)


async def test_a_lying_poll_is_exit_1_with_one_line_and_the_next_run_recovers(
    cli: CliRunner, fake_api: FakeTradecloud
) -> None:
    from tests.helpers.fake_tradecloud import repeat_answer, with_objects

    put(fake_api, *(order(n, stamp(n + 1)) for n in range(250)))
    fake_api.poll_lie = repeat_answer(fake_api, at=3, of=1)
    result = await cli("reconcile", "--since", T, "--no-shipments")
    assert result.code == 1
    assert "older than the lastUpdatedAfter" in one_error_line(result.stderr)
    assert "INCOMPLETE" in result.stdout

    undated = order(900, stamp(1))
    del undated["lastUpdatedAt"]
    fake_api.poll_lie = with_objects(undated, at=len(fake_api.poll_answers) + 3)  # last page
    again = await cli("reconcile", "--since", T, "--no-shipments", "--json")
    assert again.code == 1
    assert "no readable lastUpdatedAt" in one_error_line(again.stderr)
    report = json.loads(again.stdout)
    assert report["unusable"] == 1 and report["endpoints"][0]["complete"] is True
    assert report["endpoints"][0]["cursor_after"] == stamp(250)

    fake_api.poll_lie = None
    last = await cli("reconcile", "--no-shipments", "--check")
    assert last.code == 0, last.stderr
    listed = await cli(
        "events", "list", "--kind", "order_recovered", "-n", "1000", "--json", api=False
    )
    assert len({event["resource_id"] for event in json.loads(listed.stdout)}) == 250


def test_a_completed_run_with_unreadable_objects_says_so() -> None:
    from tcwebhook.reconcile.run import unusable_error

    report = ReconcileReport("2026-01-01T00:00:00.000Z", False, "cli")
    result = EndpointResult("order-search/poll", "order_recovered", T, None, polled=3, unusable=2)
    result.complete = True
    report.endpoints.append(result)
    report.error = unusable_error(report)
    assert "2 object(s)" in report.error and "2 on order-search/poll" in report.error
    console = Console(record=True, width=200)
    render(report, console)
    text = console.export_text()
    assert "UNREADABLE" in text and "INCOMPLETE" not in text
    assert report.to_json()["unusable"] == 2
