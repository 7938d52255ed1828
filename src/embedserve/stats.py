"""Plain counters and histograms the engine keeps for /metrics (no Prometheus types here)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Histogram:
    """Cumulative-bucket histogram; each instance is written by one thread."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        """Count one observation."""
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, int]]:
        """`(le, count)` pairs as Prometheus wants them, +Inf last."""
        pairs, running = [], 0
        for bound, count in zip((*map(str, self.buckets), "+Inf"), self.counts, strict=True):
            running += count
            pairs.append((bound, running))
        return pairs


@dataclass
class SchedulerStats:
    """Counters of one model's scheduler (written by its device thread, except rejections)."""

    batches: int = 0
    items: int = 0
    real_tokens: int = 0
    padded_tokens: int = 0
    failed_batches: int = 0
    dropped_items: int = 0
    rejected_requests: int = 0
    unready_events: int = 0
    queue_wait: Histogram = field(default_factory=lambda: Histogram(LATENCY_BUCKETS))
    inference: Histogram = field(default_factory=lambda: Histogram(LATENCY_BUCKETS))
    batch_size: Histogram = field(default_factory=lambda: Histogram(SIZE_BUCKETS))

    def record_batch(self, size: int, real_tokens: int, padded_tokens: int, seconds: float) -> None:
        """Account one forward batch that ran."""
        self.batches += 1
        self.items += size
        self.real_tokens += real_tokens
        self.padded_tokens += padded_tokens
        self.inference.observe(seconds)
        self.batch_size.observe(size)


@dataclass
class RequestStats:
    """Counters of one model's requests (written on the event loop)."""

    timeouts: int = 0
    cancelled: int = 0
    tokenization: Histogram = field(default_factory=lambda: Histogram(LATENCY_BUCKETS))
