"""Prometheus metrics of one app: request counters and latency, plus scheduler gauges."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from embedserve.engine import ModelRunner

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _SchedulerCollector(Collector):
    """Reads the schedulers' counters at scrape time."""

    def __init__(self, runners: Callable[[], Sequence[ModelRunner]]) -> None:
        self._runners = runners

    def collect(self) -> Iterable[Metric]:
        families = {
            "batches": CounterMetricFamily(
                "embedserve_batches", "forward batches run", labels=["model"]
            ),
            "items": CounterMetricFamily(
                "embedserve_batch_inputs", "inputs embedded in batches", labels=["model"]
            ),
            "real_tokens": CounterMetricFamily(
                "embedserve_tokens", "real tokens fed to the model", labels=["model"]
            ),
            "padded_tokens": CounterMetricFamily(
                "embedserve_padded_tokens", "tokens processed including padding", labels=["model"]
            ),
            "failed_batches": CounterMetricFamily(
                "embedserve_failed_batches", "batches whose forward pass failed", labels=["model"]
            ),
            "dropped_items": CounterMetricFamily(
                "embedserve_dropped_inputs", "inputs dropped: client gone", labels=["model"]
            ),
            "rejected_requests": CounterMetricFamily(
                "embedserve_rejected_requests", "requests refused with 429", labels=["model"]
            ),
        }
        queued = GaugeMetricFamily(
            "embedserve_queued_tokens", "tokens admitted and waiting", labels=["model"]
        )
        for runner in self._runners():
            if runner.scheduler is None:
                continue
            stats = vars(runner.scheduler.stats)
            for key, family in families.items():
                family.add_metric([runner.id], stats[key])
            queued.add_metric([runner.id], runner.scheduler.queued_tokens)
        yield from families.values()
        yield queued


class Metrics:
    """The registry of one app instance (so tests can build many apps)."""

    def __init__(self, runners: Callable[[], Sequence[ModelRunner]]) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "embedserve_http_requests",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "embedserve_http_request_duration_seconds",
            "HTTP request latency by route",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_SchedulerCollector(runners))
        ProcessCollector(registry=self.registry)  # process_resident_memory_bytes, CPU seconds

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        """Count one finished request."""
        self._requests.labels(route, str(status)).inc()
        self._latency.labels(route).observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
