"""Bench results: per-request samples, their summary, a Markdown table and JSON."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Sample:
    """One request as the client saw it: `status` is the HTTP status, or `timeout` / `error`."""

    latency_s: float
    status: int | str
    inputs: int
    tokens: int
    finished_at: float = 0.0  # time.perf_counter() at the answer; 0: not timed


@dataclass
class Report:
    """Summary of one bench run."""

    label: str
    settings: dict[str, Any]
    duration_s: float
    requests: int
    ok: int
    errors: dict[str, int]
    requests_per_s: float
    inputs_per_s: float
    tokens_per_s: float
    latency_ms: dict[str, float]
    rss_mb: list[float] = field(default_factory=list)
    # Per second of the run: answered ok, refused (429/503), failed otherwise, p50 of the ok.
    timeline: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        """A report read back from its JSON (`to_dict`)."""
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})


def summarize(
    label: str,
    samples: Sequence[Sample],
    duration_s: float,
    settings: dict[str, Any],
    rss_mb: Sequence[float] = (),
) -> Report:
    """Throughput over the successful requests, latency over them, errors by status."""
    ok = [s for s in samples if s.status == 200]
    errors = Counter(str(s.status) for s in samples if s.status != 200)
    latencies = np.array([s.latency_s for s in ok]) * 1000 if ok else np.zeros(1)
    return Report(
        label=label,
        settings=settings,
        duration_s=round(duration_s, 3),
        requests=len(samples),
        ok=len(ok),
        errors=dict(sorted(errors.items())),
        requests_per_s=round(len(ok) / duration_s, 2),
        inputs_per_s=round(sum(s.inputs for s in ok) / duration_s, 2),
        tokens_per_s=round(sum(s.tokens for s in ok) / duration_s, 1),
        latency_ms={
            "mean": round(float(latencies.mean()), 2),
            "p50": round(float(np.percentile(latencies, 50)), 2),
            "p90": round(float(np.percentile(latencies, 90)), 2),
            "p99": round(float(np.percentile(latencies, 99)), 2),
            "max": round(float(latencies.max()), 2),
        },
        rss_mb=[round(v, 1) for v in rss_mb],
        timeline=timeline(samples),
    )


def timeline(samples: Sequence[Sample]) -> list[dict[str, Any]]:
    """The run second by second (from the first request's start): what was answered in it."""
    timed = [sample for sample in samples if sample.finished_at]
    if not timed:
        return []
    origin = min(sample.finished_at - sample.latency_s for sample in timed)
    seconds: dict[int, list[Sample]] = {}
    for sample in timed:
        seconds.setdefault(int(sample.finished_at - origin), []).append(sample)
    rows = []
    for second in range(max(seconds) + 1):
        answered = seconds.get(second, [])
        ok = [sample.latency_s for sample in answered if sample.status == 200]
        refused = sum(1 for sample in answered if str(sample.status) in ("429", "503"))
        rows.append(
            {
                "t": second,
                "ok": len(ok),
                "refused": refused,
                "failed": len(answered) - len(ok) - refused,
                "p50_ms": round(float(np.median(ok)) * 1000, 2) if ok else None,
            }
        )
    return rows


_COLUMNS = ("run", "req/s", "inputs/s", "tokens/s", "mean ms", "p50", "p90", "p99", "max", "errors")


def markdown_table(reports: Sequence[Report]) -> str:
    """One row per report."""
    lines = ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    for r in reports:
        errors = ", ".join(f"{k}: {v}" for k, v in r.errors.items()) or "0"
        cells = [
            r.label,
            f"{r.requests_per_s:.1f}",
            f"{r.inputs_per_s:.1f}",
            f"{r.tokens_per_s:.0f}",
            *(f"{r.latency_ms[k]:.1f}" for k in ("mean", "p50", "p90", "p99", "max")),
            errors,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
