"""Answer counters for ``/stats``: questions answered, abstention rate, latency percentiles."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from qabot.stats import percentile


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    answered: int
    abstained: int
    failed: int
    p50_ms: float | None
    p95_ms: float | None
    uptime_s: float

    @property
    def abstention_rate(self) -> float | None:
        return self.abstained / self.answered if self.answered else None


class AnswerStats:
    """Counts since the bot started; latencies keep the most recent ``window`` answers."""

    def __init__(self, window: int = 10_000) -> None:
        self.started = time.monotonic()
        self.answered = 0
        self.abstained = 0
        self.failed = 0
        self._latencies_ms: deque[float] = deque(maxlen=window)

    def record(self, latency_s: float, *, abstained: bool) -> None:
        self.answered += 1
        self.abstained += int(abstained)
        self._latencies_ms.append(latency_s * 1000)

    def record_failure(self) -> None:
        self.failed += 1

    def snapshot(self) -> StatsSnapshot:
        latencies = list(self._latencies_ms)
        return StatsSnapshot(
            answered=self.answered,
            abstained=self.abstained,
            failed=self.failed,
            p50_ms=percentile(latencies, 50),
            p95_ms=percentile(latencies, 95),
            uptime_s=time.monotonic() - self.started,
        )
