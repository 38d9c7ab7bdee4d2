"""The one back-off: its bounds, cap and jitter, and that each caller keeps its schedule."""

from __future__ import annotations

import itertools
import math
import random
import ssl
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tcwebhook.backoff import TRADECLOUD_SENDER, Schedule, exponential
from tcwebhook.config import RetrySettings
from tcwebhook.delivery.worker import next_delay
from tcwebhook.replay import RetryPolicy
from tcwebhook.tradecloud.transport import Transport


def test_doubles_from_base_without_jitter() -> None:
    assert [exponential(n, base=0.25) for n in range(1, 6)] == [0.25, 0.5, 1, 2, 4]
    assert [exponential(n, base=1, factor=3) for n in range(1, 4)] == [1, 3, 9]


def test_attempt_zero_waits_like_the_first() -> None:
    assert exponential(0, base=2) == exponential(1, base=2) == 2


def test_cap_bounds_every_wait_even_far_out() -> None:
    waits = [exponential(n, base=1, cap=60) for n in range(1, 40)]
    assert max(waits) == 60 and waits[-1] == 60
    assert waits == sorted(waits)  # never shrinks
    # Far past the largest float the wait is the cap, not an OverflowError.
    assert exponential(5000, base=1, cap=1800) == 1800
    assert exponential(5000, base=0.5, factor=2.5, cap=30, jitter=0.5, fraction=lambda: 0) == 15
    assert exponential(5000, base=1) == math.inf
    assert exponential(5000, base=0, cap=10) == 0


@pytest.mark.parametrize("jitter", [0.25, 0.5, 1.0])
def test_jitter_spans_the_upper_part_of_the_wait(jitter: float) -> None:
    assert exponential(3, base=1, jitter=jitter, fraction=lambda: 0.0) == 4 * (1 - jitter)
    assert exponential(3, base=1, jitter=jitter, fraction=lambda: 1.0) == 4
    rng = random.Random(11)
    waits = [exponential(3, base=1, jitter=jitter, fraction=rng.random) for _ in range(2000)]
    assert all(4 * (1 - jitter) <= wait <= 4 for wait in waits)
    spread = 4 * jitter
    # Spread over the whole range, not bunched at one end.
    assert min(waits) < 4 * (1 - jitter) + spread * 0.05
    assert max(waits) > 4 - spread * 0.05


def test_jitter_applies_after_the_cap() -> None:
    waits = [exponential(30, base=1, cap=10, jitter=0.5) for _ in range(500)]
    assert all(5 <= wait <= 10 for wait in waits)
    assert min(waits) < 6  # the capped wait is spread too, not the uncapped one then capped


@pytest.mark.parametrize(
    "arguments",
    [{"jitter": -0.1}, {"jitter": 1.5}, {"base": -1}, {"factor": 0.5}, {"cap": -1}],
)
def test_refuses_parameters_that_make_no_schedule(arguments: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        exponential(1, **{"base": 1.0, **arguments})


def test_schedule_is_the_function_with_its_parameters() -> None:
    schedule = Schedule(base=0.1, factor=3, cap=1, jitter=0.5)
    for attempt in range(1, 8):
        assert schedule.delay(attempt, lambda: 0.3) == exponential(
            attempt, base=0.1, factor=3, cap=1, jitter=0.5, fraction=lambda: 0.3
        )


# ------------------------------------------------------------------------------------------
# Each caller's schedule, as it was before the three were one function


def test_delivery_worker_schedule_is_unchanged() -> None:
    """Doubling from base_delay, capped at max_delay, then uniform in [half, all] of it."""
    for retry in (RetrySettings(), RetrySettings(base_delay=0.05, max_delay=0.1)):
        random.seed(20261207)
        before = [
            min(retry.max_delay, retry.base_delay * 2 ** max(n - 1, 0)) * random.uniform(0.5, 1)
            for n in range(0, 30)
        ]
        random.seed(20261207)
        assert [next_delay(retry, n) for n in range(0, 30)] == pytest.approx(before)
    # A configured max_attempts far beyond the doubling range waits the cap (was: OverflowError).
    assert 900 <= next_delay(RetrySettings(max_attempts=5000), 4000) <= 1800


def test_replay_retry_schedule_is_tradecloud_sender_unchanged() -> None:
    assert [RetryPolicy().delay(n) for n in range(1, 10)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    assert [TRADECLOUD_SENDER.delay(n) for n in range(1, 3)] == [0.5, 1]
    # --max-delay below the first wait: every wait is --max-delay.
    short = RetryPolicy(enabled=True, initial_delay=0.2, max_delay=0.2)
    assert {short.delay(n) for n in range(1, 6)} == {0.2}
    assert RetryPolicy(max_attempts=10_000).delay(9_999) == 30  # no OverflowError


async def test_tradecloud_transport_waits_double_uncapped(
    aiohttp_server: Any, server_ssl_ctx: ssl.SSLContext, ca_file: Path
) -> None:
    """503, 503, 503, 200: the transport waits 0.2 s, 0.4 s, 0.8 s (base 0.2, no cap, no jitter)
    between attempts. Only lower bounds: a loaded machine makes every gap longer, never shorter."""
    arrivals: list[float] = []

    async def handle(request: web.Request) -> web.Response:
        arrivals.append(time.monotonic())
        return web.json_response({}, status=503 if len(arrivals) < 4 else 200)

    app = web.Application()
    app.router.add_get("/poll", handle)
    server = await aiohttp_server(app, ssl=server_ssl_ctx)
    transport = Transport(ca_file=ca_file, attempts=4, backoff=0.2, requests_per_second=1000)
    try:
        answer = await transport.send("GET", str(server.make_url("/poll")), {}, "poll")
    finally:
        await transport.close()
    assert answer.status == 200
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert len(gaps) == 3
    for gap, wait in zip(gaps, (0.2, 0.4, 0.8), strict=True):
        assert gap >= wait * 0.9, (gaps, "each wait is base * 2 ** (attempt - 1), whole")
    assert sum(gaps) < 30  # bounded, however loaded the machine
