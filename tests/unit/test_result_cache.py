"""The result cache: LRU order and counters, and `embed_cached` over a real scheduler with a fake
backend: hits skip the device, equal a miss byte for byte, and take the request's own
post-processing; repeats within a request are computed once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest

from embedserve.arrays import FloatArray
from embedserve.backends.fake import FakeBackend
from embedserve.executor import Executor
from embedserve.models import ModelSpec
from embedserve.postprocess import l2_normalize
from embedserve.result_cache import ResultCache, cache_key, embed_cached
from embedserve.scheduler import Scheduler

A, B, C = [101, 7, 8, 102], [101, 9, 102], [101, 5, 5, 5, 102]


def raw(rows: FloatArray) -> FloatArray:
    return rows


def test_lru_order_evictions_and_keys() -> None:
    cache = ResultCache(2)
    rows = np.eye(3, dtype=np.float32)
    keys = [cache_key(ids) for ids in (A, B, C)]
    assert len(set(keys)) == 3 and cache_key(list(A)) == keys[0]
    cache.put_many(keys[:2], rows[:2])
    assert cache.get_many([keys[0]])[0] is not None  # A is now the most recent
    cache.put_many(keys[2:], rows[2:])  # evicts B
    found = cache.get_many(keys)
    assert found[1] is None and np.array_equal(found[2], rows[2])  # type: ignore[arg-type]
    assert cache.size == 2 and cache.stats.evictions == 1
    with pytest.raises(ValueError, match="at least one"):
        ResultCache(0)


@pytest.fixture
async def device(bundled_spec: ModelSpec) -> AsyncIterator[tuple[Scheduler, FakeBackend]]:
    backend = FakeBackend(bundled_spec)
    scheduler = Scheduler(
        Executor(backend, bundled_spec), max_batch_tokens=4096, max_queue_tokens=100_000
    )
    scheduler.start()
    yield scheduler, backend
    scheduler.stop()


async def test_hits_skip_the_device_and_equal_misses(
    device: tuple[Scheduler, FakeBackend],
) -> None:
    scheduler, backend = device
    cache = ResultCache(100)
    first = await embed_cached(scheduler, cache, [A, B], l2_normalize)
    batches = backend.batches
    again = await embed_cached(scheduler, cache, [B, A], l2_normalize)
    assert backend.batches == batches  # nothing ran
    assert again[0].tobytes() == first[1].tobytes() and again[1].tobytes() == first[0].tobytes()
    assert (cache.stats.hits, cache.stats.misses) == (2, 2)

    seen = len(backend.seen)
    mixed = await embed_cached(scheduler, cache, [C, A, C], l2_normalize)
    assert backend.seen[seen:] == [C]  # only the new input, once
    alone = await scheduler.embed([C, A, C], l2_normalize)
    assert mixed.tobytes() == alone.tobytes()
    assert (cache.stats.hits, cache.stats.misses) == (4, 3)


async def test_hits_take_the_request_post_processing(
    device: tuple[Scheduler, FakeBackend],
) -> None:
    scheduler, _ = device
    cache = ResultCache(10)
    unnormalized = await embed_cached(scheduler, cache, [A], raw)
    normalized = await embed_cached(scheduler, cache, [A], l2_normalize)  # a hit
    assert cache.stats.hits == 1
    assert normalized.tobytes() == l2_normalize(unnormalized).tobytes()
    assert not np.isclose(np.linalg.norm(unnormalized), 1.0)


async def test_without_a_cache_every_input_runs(device: tuple[Scheduler, FakeBackend]) -> None:
    scheduler, backend = device
    await embed_cached(scheduler, None, [A, A], raw)
    await embed_cached(scheduler, None, [A], raw)
    assert backend.seen.count(A) == 3
