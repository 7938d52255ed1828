"""Rows (a) and (b) of compare.py: sentence-transformers `encode` and our executor in-process
(with the server's batch selection; the raw ceiling)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from embedserve.models import bundled_model_path
from embedserve.postprocess import finalize
from embedserve.runner import ModelRunner
from embedserve.scheduler.batching import select_batch
from embedserve.settings import ModelSettings, auto


def timed_runs(fn: Callable[[], object], runs: int, warmups: int) -> list[float]:
    """Wall time of each of `runs` calls of `fn`, after `warmups` untimed ones."""
    for _ in range(warmups):
        fn()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def median_time(fn: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    """Median wall time of `fn` over `repeats` runs (after one untimed warm-up)."""
    times = timed_runs(fn, repeats, warmups=1)
    return statistics.median(times), times


def single_latency_ms(fn: Callable[[], object], calls: int = 200) -> float:
    """Median latency of one call, in ms."""
    return statistics.median(timed_runs(fn, calls, warmups=10)) * 1000


def bench_sentence_transformers(
    mixed: list[str], short: list[str], tokens: int, repeats: int
) -> dict[str, Any]:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(bundled_model_path()), device="cpu")
    seconds, runs = median_time(
        lambda: model.encode(mixed, batch_size=32, normalize_embeddings=True), repeats
    )
    latency = single_latency_ms(lambda: model.encode([short[0]], normalize_embeddings=True))
    reference = model.encode(mixed[:200], normalize_embeddings=True)
    return {
        "tokens_per_s": round(tokens / seconds, 1),
        "inputs_per_s": round(len(mixed) / seconds, 1),
        "runs_s": [round(t, 3) for t in runs],
        "single_short_ms": round(latency, 2),
        "_reference": reference,
    }


def bench_raw_backend(
    mixed: list[str], short: list[str], tokens: int, repeats: int, cache_dir: Path
) -> dict[str, Any]:
    """The executor alone (the server's batch selection, no queue, no HTTP)."""
    settings = ModelSettings(backend="onnx")
    limits = settings.limits
    runner = ModelRunner.from_settings(settings, cache_dir)
    runner.load()
    executor, spec, tokenizer = runner.executor, runner.spec, runner.tokenizer
    assert executor is not None
    max_padding = auto.max_padding(limits, settings.device)

    def embed(texts: list[str]) -> np.ndarray:
        ids = tokenizer.encode(texts)
        out = np.empty((len(ids), spec.output_dimensions), dtype=np.float32)
        remaining = list(range(len(ids)))
        while remaining:  # the scheduler's batch selection over the whole set
            chosen = select_batch(
                [len(ids[i]) for i in remaining],
                max_batch_tokens=limits.max_batch_tokens,
                max_batch_size=limits.max_batch_size,
                window=len(remaining),
                max_padding=max_padding,
            )
            rows = [remaining[p] for p in chosen]
            pooled = executor.run([ids[r] for r in rows]).vectors
            out[rows] = finalize(pooled, dimensions=None, normalize=spec.normalize)
            taken = set(chosen)
            remaining = [r for p, r in enumerate(remaining) if p not in taken]
        return out

    seconds, runs = median_time(lambda: embed(mixed), repeats)
    latency = single_latency_ms(lambda: embed([short[0]]))
    vectors = embed(mixed[:200])
    runner.close()
    return {
        "tokens_per_s": round(tokens / seconds, 1),
        "inputs_per_s": round(len(mixed) / seconds, 1),
        "runs_s": [round(t, 3) for t in runs],
        "single_short_ms": round(latency, 2),
        "max_batch_tokens": limits.max_batch_tokens,
        "_vectors": vectors,
    }
