"""The result cache: latency of a hit against a miss, and tokens/s on texts that never repeat
with the cache on (filling and evicting) and off, same run."""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np
from engine_load import compare_engines

from embedserve.bench.workloads import generate_texts
from embedserve.engine import Engine
from embedserve.result_cache import ResultCache, cache_key
from embedserve.settings import default_cache_dir

SHAPES = [(1, 256), (8, 16), (32, 4)]
ENTRIES = 4096
LATENCY_SAMPLES = 60


async def latency_ms(engine: Engine, batches: list[list[str]]) -> float:
    """Median milliseconds of `engine.embed` over `batches`, one at a time."""
    times = []
    for texts in batches:
        started = time.perf_counter()
        await engine.embed(texts)
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


async def hit_latency(engine: Engine, size: int, kind: str) -> dict[str, float]:
    """One request of `size` texts: every text new (misses) against the same texts again."""
    fresh = generate_texts(kind, size * LATENCY_SAMPLES, seed=11)
    misses = [fresh[i : i + size] for i in range(0, len(fresh), size)]
    miss = await latency_ms(engine, misses)
    hit = await latency_ms(engine, misses)  # the same requests again: every text cached
    return {"texts": size, "miss_ms": miss, "hit_ms": hit}


async def result_cache_cost(texts: int, repeats: int) -> dict[str, Any]:
    """Hit and miss latency, then throughput with the cache on and off on unrepeated texts."""
    cache_dir = default_cache_dir()
    async with (
        Engine.from_models(cache_dir=cache_dir, cache_entries=0) as off,
        Engine.from_models(cache_dir=cache_dir, cache_entries=ENTRIES) as on,
    ):
        latency = [await hit_latency(on, 1, "short"), await hit_latency(on, 32, "mixed")]
        rows = []
        for number, shape in enumerate(SHAPES):  # texts never seen before, in every run
            seeds = range(1000 * (number + 1), 1000 * (number + 1) + repeats)
            runs = [generate_texts("mixed", texts, seed=seed) for seed in seeds]
            rows += await compare_engines({"off": off, "on": on}, runs, [shape])
        cache = on.runners[0].result_cache
        assert cache is not None
        stats = {"hits": cache.stats.hits, "misses": cache.stats.misses}
        bookkeeping = cache_bookkeeping_us(on, generate_texts("mixed", 4000, seed=7))
    for row in rows:
        rates = row["tokens_per_s"]
        row["cost"] = 1 - rates["on"] / rates["off"]
    return {
        "entries": ENTRIES,
        "texts": texts,
        "repeats": repeats,
        "latency": latency,
        "rows": rows,
        "counters": stats,
        "bookkeeping_us": bookkeeping,
    }


def cache_bookkeeping_us(engine: Engine, texts: list[str]) -> dict[str, float]:
    """Microseconds the cache adds to one new input: its key, a failed lookup, and storing its
    vector (evicting another), measured alone, without the noise of the forward pass."""
    runner = engine.runners[0]
    token_lists = runner.tokenizer.encode(texts)
    cache = ResultCache(ENTRIES)
    rows = np.random.default_rng(0).standard_normal((len(texts), runner.spec.dimension))
    rows = rows.astype(np.float32)
    started = time.perf_counter()
    for start in range(0, len(texts), 16):
        keys = [cache_key(ids) for ids in token_lists[start : start + 16]]
        cache.get_many(keys)
        cache.put_many(keys, rows[start : start + 16])
    seconds = time.perf_counter() - started
    mean_tokens = sum(len(ids) for ids in token_lists) / len(texts)
    return {"us_per_input": 1e6 * seconds / len(texts), "mean_tokens": mean_tokens}


def render_cache(result: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"### Result cache ({result['entries']} entries): hit latency, in-process",
        "",
        "| request | miss (ms, median) | hit (ms, median) |",
        "|---|---:|---:|",
    ]
    for row in result["latency"]:
        lines.append(f"| {row['texts']} texts | {row['miss_ms']:.2f} | {row['hit_ms']:.2f} |")
    lines += [
        "",
        f"Throughput without repeats: {result['repeats']} runs of {result['texts']} new mixed "
        "texts each (the cache fills, then evicts), median:",
        "",
        "| clients x texts/request | cache off: tokens/s | cache on: tokens/s | cost |",
        "|---|---:|---:|---:|",
    ]
    for row in result["rows"]:
        rates = row["tokens_per_s"]
        lines.append(
            f"| {row['clients']} x {row['texts_per_request']} | {rates['off']:,.0f} | "
            f"{rates['on']:,.0f} | {row['cost']:+.1%} |"
        )
    counters, book = result["counters"], result["bookkeeping_us"]
    slowest = min(r["tokens_per_s"]["off"] for r in result["rows"])
    compute_us = 1e6 * book["mean_tokens"] / slowest
    lines += [
        "",
        f"Cache counters at the end: {counters['hits']} hits, {counters['misses']} misses.",
        "",
        f"Cache bookkeeping alone (key, failed lookup, store and evict): "
        f"{book['us_per_input']:.1f} µs per new input, against {compute_us / 1000:.1f} ms of "
        f"compute for an input of the mean length ({book['mean_tokens']:.0f} tokens) at the "
        f"slowest rate above: {book['us_per_input'] / compute_us:.2%}.",
    ]
    return lines
