"""Closed-loop load on in-process engines: clients sending requests of a few texts each, for
comparing one engine setting against another in the same run."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from typing import Any

from embedserve.engine import Engine


async def closed_loop(engine: Engine, requests: Sequence[Sequence[str]], clients: int) -> float:
    """Seconds to serve every request with `clients` concurrent senders."""
    queue = list(reversed(requests))

    async def client() -> None:
        while queue:
            await engine.embed(queue.pop())

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - started


def as_requests(texts: Sequence[str], size: int) -> list[list[str]]:
    """`texts` cut into requests of `size` texts."""
    return [list(texts[i : i + size]) for i in range(0, len(texts), size)]


async def compare_engines(
    engines: dict[str, Engine],
    runs: Sequence[Sequence[str]],
    shapes: Sequence[tuple[int, int]],
) -> list[dict[str, Any]]:
    """Tokens/s of each engine per (clients, texts per request), one run per item of `runs`
    (the texts it sends), engines interleaved so drift of the machine hits every engine alike;
    the median of the runs."""
    counter = next(iter(engines.values())).runners[0].tokenizer
    tokens = [sum(len(ids) for ids in counter.encode(list(texts))) for texts in runs]
    rows = []
    for clients, size in shapes:
        rates: dict[str, list[float]] = {name: [] for name in engines}
        before = {name: counters(engine) for name, engine in engines.items()}
        for texts, count in zip(runs, tokens, strict=True):
            requests = as_requests(texts, size)
            for name, engine in engines.items():
                rates[name].append(count / await closed_loop(engine, requests, clients))
        rate = {name: statistics.median(values) for name, values in rates.items()}
        shares, sizes = {}, {}
        for name, engine in engines.items():
            batches, items, real, padded = (
                now - then for now, then in zip(counters(engine), before[name], strict=True)
            )
            shares[name] = 1 - real / max(padded, 1)
            sizes[name] = items / max(batches, 1)
        rows.append(
            {
                "clients": clients,
                "texts_per_request": size,
                "tokens_per_s": rate,
                "padding_share": shares,
                "mean_batch": sizes,
            }
        )
    return rows


def counters(engine: Engine) -> tuple[int, int, int, int]:
    """Batches, items, real and padded tokens the engine's (first) model has run so far."""
    scheduler = engine.runners[0].scheduler
    assert scheduler is not None
    stats = scheduler.stats
    return stats.batches, stats.items, stats.real_tokens, stats.padded_tokens
