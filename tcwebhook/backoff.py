"""Exponential back-off, written once: the delivery worker, the Tradecloud API transport and
``replay --retry`` each call it with their own schedule.

A schedule is ``base * factor ** (attempt - 1)``, capped at ``cap``, then, with ``jitter``, a
random point in its upper part (``jitter=0.5``: between half and all of it), so that many
retries started together spread out instead of arriving at once.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass


def exponential(
    attempt: int,
    *,
    base: float,
    factor: float = 2.0,
    cap: float = math.inf,
    jitter: float = 0.0,
    fraction: Callable[[], float] = random.random,
) -> float:
    """The wait in seconds after failed attempt ``attempt`` (1-based; 0 counts as 1).

    ``jitter`` (0 to 1) is the share of the wait that is random: the result lies in
    ``[(1 - jitter) * w, w]`` for the capped wait ``w``. ``fraction`` draws from ``[0, 1)``.
    """
    if not (0.0 <= jitter <= 1.0):
        raise ValueError(f"jitter must be between 0 and 1 (got {jitter})")
    if base < 0 or factor < 1 or cap < 0:
        raise ValueError("back-off needs base >= 0, factor >= 1 and cap >= 0")
    wait = min(cap, _grown(base, factor, max(attempt, 1) - 1))
    if jitter == 0.0:
        return wait
    # The same arithmetic as random.uniform(1 - jitter, 1), so a seeded run repeats itself.
    return wait * ((1.0 - jitter) + jitter * fraction())


def _grown(base: float, factor: float, steps: int) -> float:
    """``base * factor ** steps`` without overflowing: a very late attempt waits the cap."""
    if base == 0:
        return 0.0
    try:
        return float(base * factor**steps)
    except OverflowError:
        return math.inf


@dataclass(frozen=True)
class Schedule:
    """A named set of back-off parameters; ``delay(n)`` is the wait after failed attempt n."""

    base: float
    factor: float = 2.0
    cap: float = math.inf
    jitter: float = 0.0

    def delay(self, attempt: int, fraction: Callable[[], float] = random.random) -> float:
        return exponential(
            attempt,
            base=self.base,
            factor=self.factor,
            cap=self.cap,
            jitter=self.jitter,
            fraction=fraction,
        )


# How ``replay --retry`` imitates Tradecloud's webhook sender. Tradecloud documents only
# "exponential back-off" (docs/tradecloud.md#status-codes-and-retries): we wait 0.5 s, 1 s,
# 2 s, … up to 30 s (``--max-delay``), without jitter, so a run's waits are predictable.
TRADECLOUD_SENDER = Schedule(base=0.5, factor=2.0, cap=30.0)
