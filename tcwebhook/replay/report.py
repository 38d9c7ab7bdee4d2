"""What a replay run found: one result per event, and the run's totals."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from tcwebhook import protocol
from tcwebhook.protocol import Verdict
from tcwebhook.replay.target import Method


@dataclass(frozen=True)
class SendResult:
    """One event as sent, the final answer, and what Tradecloud would do with it."""

    source: str
    event_name: str | None
    message_id: str | None
    method: Method
    url: str
    status: int | None
    attempts: int
    latency_ms: float | None  # of the last attempt
    total_ms: float  # all attempts and back-off waits
    error: str | None = None
    response_body: str | None = None

    @property
    def verdict(self) -> Verdict:
        return classify(self.status)

    @property
    def delivered(self) -> bool:
        return self.verdict == "delivered"

    def to_json(self, with_body: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "source": self.source,
            "eventName": self.event_name,
            "messageId": self.message_id,
            "method": self.method,
            "url": self.url,
            "status": self.status,
            "attempts": self.attempts,
            "latencyMs": _round(self.latency_ms),
            "totalMs": _round(self.total_ms),
            "verdict": self.verdict,
            "tradecloud": TRADECLOUD_REACTION[self.verdict],
            "error": self.error,
        }
        if with_body:
            data["responseBody"] = self.response_body
        return data


TRADECLOUD_REACTION: dict[Verdict, str] = {
    "delivered": "delivered",
    "dropped": "dropped, not retried",
    "retried": "retried by Tradecloud with back-off",
    "undocumented": "not delivered; Tradecloud's handling of this status is undocumented",
    "no-answer": "no answer; Tradecloud's handling is undocumented (it may retry)",
}


# What Tradecloud does with an answer (docs/tradecloud.md#status-codes-and-retries).
classify = protocol.verdict


@dataclass(frozen=True)
class ReplayReport:
    results: list[SendResult]
    wall_seconds: float

    @property
    def all_delivered(self) -> bool:
        return bool(self.results) and all(result.delivered for result in self.results)

    @property
    def status_counts(self) -> dict[str, int]:
        counts = Counter(
            str(r.status) if r.status is not None else "no answer" for r in self.results
        )
        return dict(sorted(counts.items()))

    @property
    def verdict_counts(self) -> dict[str, int]:
        return dict(Counter(result.verdict for result in self.results))

    @property
    def throughput(self) -> float:
        return len(self.results) / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def latency_percentile(self, percent: float) -> float | None:
        """Nearest-rank percentile of the last-attempt latencies of answered events, in ms."""
        values = sorted(r.latency_ms for r in self.results if r.latency_ms is not None)
        if not values:
            return None
        rank = max(1, math.ceil(percent / 100 * len(values)))
        return values[rank - 1]

    def to_json(self, with_bodies: bool = False) -> dict[str, Any]:
        return {
            "sent": len(self.results),
            "delivered": sum(result.delivered for result in self.results),
            "allDelivered": self.all_delivered,
            "statusCounts": self.status_counts,
            "verdictCounts": self.verdict_counts,
            "durationSeconds": round(self.wall_seconds, 3),
            "throughputPerSecond": round(self.throughput, 1),
            "latencyMs": {
                name: _round(self.latency_percentile(percent))
                for name, percent in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100))
            },
            "results": [result.to_json(with_bodies) for result in self.results],
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
