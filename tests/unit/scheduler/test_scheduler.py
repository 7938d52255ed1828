"""The scheduler with a fake backend: batching across requests, admission, cancellation, faults."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest

from embedserve.backends.fake import FakeBackend
from embedserve.errors import BackendFailure, NotReady, Overloaded
from embedserve.executor import Executor
from embedserve.models import ModelSpec
from embedserve.postprocess import l2_normalize
from embedserve.scheduler import Scheduler
from tests.conftest import until


def make_scheduler(
    spec: ModelSpec, *, delay_s: float = 0.0, fail_token_id: int | None = None, **limits: int
) -> tuple[Scheduler, FakeBackend]:
    backend = FakeBackend(spec, delay_s=delay_s, fail_token_id=fail_token_id)
    options = {"max_batch_tokens": 4096, "max_queue_tokens": 100_000, **limits}
    return Scheduler(Executor(backend, spec), **options), backend


@pytest.fixture
async def slow(bundled_spec: ModelSpec) -> AsyncIterator[tuple[Scheduler, FakeBackend]]:
    scheduler, backend = make_scheduler(bundled_spec, delay_s=0.15, max_queue_tokens=50)
    scheduler.start()
    yield scheduler, backend
    scheduler.stop()


async def test_concurrent_requests_share_batches_and_keep_their_rows(
    bundled_spec: ModelSpec,
) -> None:
    scheduler, backend = make_scheduler(bundled_spec, delay_s=0.05)
    scheduler.start()
    try:
        requests = [[[101, 1000 + i, 102], [101, 2000 + i, 2001 + i, 102]] for i in range(16)]
        results = await asyncio.gather(*(scheduler.embed(r, l2_normalize) for r in requests))
        alone = [await scheduler.embed(r, l2_normalize) for r in requests]
    finally:
        scheduler.stop()
    for together, single in zip(results, alone, strict=True):
        assert together.shape == (2, 384)
        np.testing.assert_allclose(together, single, atol=1e-6)
    assert not np.allclose(results[0], results[1])
    # 16 concurrent requests plus 16 sequential ones: far fewer than 32 forward passes
    assert backend.batches < 16 + 16
    assert scheduler.stats.items == 64


async def test_token_budget_splits_batches(bundled_spec: ModelSpec) -> None:
    scheduler, backend = make_scheduler(bundled_spec, max_batch_tokens=8)
    scheduler.start()
    try:
        vectors = await scheduler.embed([[101, 5, 102]] * 6, l2_normalize)
    finally:
        scheduler.stop()
    assert vectors.shape == (6, 384)
    assert backend.batches == 3  # 2 items x 3 tokens fit a budget of 8, 3 items do not
    assert scheduler.stats.padded_tokens == 18


async def test_admission_refuses_when_queue_is_full(
    slow: tuple[Scheduler, FakeBackend],
) -> None:
    scheduler, backend = slow
    first = asyncio.ensure_future(scheduler.embed([[101, 5, 102]], l2_normalize))
    await until(lambda: len(backend.seen) == 1)  # running now, for 0.15 s
    queued = asyncio.ensure_future(scheduler.embed([[101] + [6] * 38 + [102]], l2_normalize))
    await until(lambda: scheduler.queued_tokens == 40)
    with pytest.raises(Overloaded, match="at capacity"):
        await scheduler.embed([[101] + [7] * 18 + [102]], l2_normalize)
    assert scheduler.stats.rejected_requests == 1
    await asyncio.gather(first, queued)
    assert scheduler.queued_tokens == 0


async def test_a_request_larger_than_the_queue_is_admitted_when_idle(
    slow: tuple[Scheduler, FakeBackend],
) -> None:
    scheduler, _ = slow
    vectors = await scheduler.embed([[101] + [9] * 98 + [102]], l2_normalize)
    assert vectors.shape == (1, 384)


async def test_cancelled_request_items_never_reach_the_backend(
    slow: tuple[Scheduler, FakeBackend],
) -> None:
    scheduler, backend = slow
    running = asyncio.ensure_future(scheduler.embed([[101, 11, 102]], l2_normalize))
    await until(lambda: len(backend.seen) == 1)  # running now, for 0.15 s
    doomed = asyncio.ensure_future(
        scheduler.embed([[101, 4444, 102], [101, 4445, 102]], l2_normalize)
    )
    await until(lambda: scheduler.queued_tokens == 6)
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert scheduler.queued_tokens == 0
    await running
    survivor = await scheduler.embed([[101, 12, 102]], l2_normalize)
    assert survivor.shape == (1, 384)
    seen_tokens = {token for ids in backend.seen for token in ids}
    assert 11 in seen_tokens and 12 in seen_tokens
    assert not {4444, 4445} & seen_tokens
    assert scheduler.stats.dropped_items == 2


async def test_failing_batch_fails_only_its_requests(bundled_spec: ModelSpec) -> None:
    scheduler, backend = make_scheduler(bundled_spec, fail_token_id=666)
    scheduler.start()
    try:
        with pytest.raises(BackendFailure, match="fake backend failure on token 666"):
            await scheduler.embed([[101, 666, 102], [101, 5, 102]], l2_normalize)
        healthy = await scheduler.embed([[101, 5, 102]], l2_normalize)
        (failing,) = await asyncio.gather(
            scheduler.embed([[101, 666, 102]], l2_normalize), return_exceptions=True
        )
    finally:
        scheduler.stop()
    assert healthy.shape == (1, 384)
    assert isinstance(failing, BackendFailure)
    assert scheduler.stats.failed_batches == 2
    assert backend.batches == 3


async def test_finisher_errors_fail_the_request_not_the_thread(bundled_spec: ModelSpec) -> None:
    scheduler, _ = make_scheduler(bundled_spec)
    scheduler.start()

    def broken(_: np.ndarray) -> np.ndarray:
        raise ValueError("post-processing bug")

    try:
        with pytest.raises(BackendFailure, match="post-processing bug"):
            await scheduler.embed([[101, 5, 102]], broken)
        assert (await scheduler.embed([[101, 5, 102]], l2_normalize)).shape == (1, 384)
    finally:
        scheduler.stop()


async def test_stop_fails_pending_requests(bundled_spec: ModelSpec) -> None:
    scheduler, backend = make_scheduler(bundled_spec, delay_s=0.2)
    scheduler.start()
    running = asyncio.ensure_future(scheduler.embed([[101, 5, 102]], l2_normalize))
    await until(lambda: len(backend.seen) == 1)  # running now, for 0.2 s
    pending = asyncio.ensure_future(scheduler.embed([[101, 6, 102]], l2_normalize))
    await until(lambda: scheduler.queued_tokens == 3)
    await asyncio.to_thread(scheduler.stop)
    with pytest.raises(NotReady, match="shutting down"):
        await pending
    assert (await running).shape == (1, 384)
    with pytest.raises(NotReady, match="shutting down"):
        await scheduler.embed([[101, 7, 102]], l2_normalize)


async def test_full_queue_refuses_before_any_work(slow: tuple[Scheduler, FakeBackend]) -> None:
    scheduler, backend = slow  # max_queue_tokens=50
    scheduler.check_admission()  # empty: no refusal
    running = asyncio.ensure_future(scheduler.embed([[101, 5, 102]], l2_normalize))
    await until(lambda: len(backend.seen) == 1)  # running now, for 0.15 s
    queued = asyncio.ensure_future(scheduler.embed([[101] + [6] * 48 + [102]], l2_normalize))
    await until(lambda: scheduler.queued_tokens == 50)
    with pytest.raises(Overloaded) as refused:
        scheduler.check_admission()
    assert refused.value.retry_after_s >= 1
    await asyncio.gather(running, queued)
    scheduler.check_admission()


async def test_deterministic_mode_pads_to_buckets_and_keeps_vectors(
    bundled_spec: ModelSpec,
) -> None:
    """Each batch is one bucket, padded to its multiple of 16; vectors equal the plain mode's
    (the fake backend ignores padding)."""
    scheduler, backend = make_scheduler(bundled_spec, delay_s=0.02, bucket=16)
    plain, _ = make_scheduler(bundled_spec)
    scheduler.start()
    plain.start()
    try:
        requests = [[[7] * length] for length in (3, 20, 5, 40, 17, 16, 1)]
        results = await asyncio.gather(*(scheduler.embed(r, l2_normalize) for r in requests))
        expected = [await plain.embed(r, l2_normalize) for r in requests]
    finally:
        scheduler.stop()
        plain.stop()
    assert all(np.array_equal(a, b) for a, b in zip(results, expected, strict=True))
    assert backend.widths and all(width % 16 == 0 for width in backend.widths)
    assert set(backend.widths) == {16, 32, 48}
