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
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from embedserve import stats as engine_stats
from embedserve.runner import ModelRunner

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


_COUNTERS = {  # SchedulerStats field -> (metric name, help)
    "batches": ("embedserve_batches", "forward batches run"),
    "items": ("embedserve_batch_inputs", "inputs embedded in batches"),
    "real_tokens": ("embedserve_tokens", "real tokens fed to the model"),
    "padded_tokens": ("embedserve_padded_tokens", "tokens processed including padding"),
    "failed_batches": ("embedserve_failed_batches", "batches whose forward pass failed"),
    "dropped_items": ("embedserve_dropped_inputs", "inputs dropped: client gone"),
    "rejected_requests": ("embedserve_rejected_requests", "requests refused with 429"),
    "unready_events": (
        "embedserve_model_unready_events",
        "times the model turned not ready (failed batches in a row, or its thread died)",
    ),
}
_REQUEST_COUNTERS = {  # RequestStats field -> (metric name, help)
    "timeouts": ("embedserve_request_timeouts", "requests answered 504: past their deadline"),
    "cancelled": ("embedserve_client_disconnects", "requests whose client hung up (499)"),
}
_CACHE_COUNTERS = {  # CacheStats field -> (metric name, help)
    "hits": ("embedserve_result_cache_hits", "inputs answered without the model (cached)"),
    "misses": ("embedserve_result_cache_misses", "inputs the model computed (cache on)"),
    "evictions": ("embedserve_result_cache_evictions", "cached vectors dropped (least recent)"),
}
_HISTOGRAMS = {  # stats attribute -> (metric name, help)
    "queue_wait": ("embedserve_queue_wait_seconds", "time an input waited to enter a batch"),
    "inference": ("embedserve_inference_seconds", "forward pass and pooling time per batch"),
    "batch_size": ("embedserve_batch_size", "inputs per forward batch"),
    "tokenization": ("embedserve_tokenization_seconds", "tokenizing time per request"),
}


def _histogram(
    name: str, help_text: str, series: list[tuple[str, engine_stats.Histogram]]
) -> Metric:
    family = HistogramMetricFamily(name, help_text, labels=["model"])
    for model, histogram in series:
        family.add_metric([model], histogram.cumulative(), histogram.total)
    return family


class _SchedulerCollector(Collector):
    """Reads the models' counters and histograms at scrape time."""

    def __init__(self, runners: Callable[[], Sequence[ModelRunner]]) -> None:
        self._runners = runners

    def collect(self) -> Iterable[Metric]:
        runners = list(self._runners())
        cached = [runner for runner in runners if runner.result_cache is not None]
        groups: list[tuple[dict[str, tuple[str, str]], list[tuple[str, object]]]] = [
            (_COUNTERS, [(r.id, r.scheduler.stats) for r in runners if r.scheduler is not None]),
            (_REQUEST_COUNTERS, [(r.id, r.request_stats) for r in runners]),
            (
                _CACHE_COUNTERS,
                [(r.id, r.result_cache.stats) for r in cached if r.result_cache is not None],
            ),
        ]
        for table, samples in groups:  # one counter family per stats field, a sample per model
            for field, (name, help_text) in table.items():
                family = CounterMetricFamily(name, help_text, labels=["model"])
                for model, stats in samples:
                    family.add_metric([model], getattr(stats, field))
                yield family
        entries = GaugeMetricFamily(
            "embedserve_result_cache_entries", "vectors held by the result cache", labels=["model"]
        )
        for runner in cached:
            assert runner.result_cache is not None
            entries.add_metric([runner.id], runner.result_cache.size)
        yield entries
        for field, (name, help_text) in _HISTOGRAMS.items():
            series = [
                (runner.id, getattr(stats, field))
                for runner in runners
                for stats in (runner.request_stats, runner.scheduler and runner.scheduler.stats)
                if stats is not None and hasattr(stats, field)
            ]
            yield _histogram(name, help_text, series)
        queued = GaugeMetricFamily(
            "embedserve_queued_tokens", "tokens admitted and waiting", labels=["model"]
        )
        ready = GaugeMetricFamily(
            "embedserve_model_ready", "1 when the model can take work", labels=["model"]
        )
        for runner in runners:
            ready.add_metric([runner.id], 1.0 if runner.ready else 0.0)
            if runner.scheduler is not None:
                queued.add_metric([runner.id], runner.scheduler.queued_tokens)
        yield queued
        yield ready


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
