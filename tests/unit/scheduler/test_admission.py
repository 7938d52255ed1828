"""Admission policy (pure), the speed meter, and admission as the scheduler and engine apply it."""

from __future__ import annotations

import asyncio

import pytest

from embedserve.backends.fake import FakeBackend
from embedserve.engine import EmbedParams, Engine
from embedserve.errors import Overloaded, RequestTimeout
from embedserve.executor import Executor
from embedserve.models import ModelSpec
from embedserve.postprocess import l2_normalize
from embedserve.runner import ModelRunner
from embedserve.scheduler import Scheduler
from embedserve.scheduler.admission import AdmissionPolicy, SpeedMeter, retry_after_seconds
from embedserve.settings import BatchingLimits
from tests.conftest import MODEL_ID, fake_runner, until


def test_empty_queue_admits_anything() -> None:
    policy = AdmissionPolicy(max_queue_tokens=10, max_queue_seconds=0.001)
    assert policy.refusal(0, 1_000_000, 1.0, remaining_s=0.0) is None


def test_token_limit_bounds_memory() -> None:
    policy = AdmissionPolicy(max_queue_tokens=100)
    assert policy.refusal(60, 40, 1e9) is None
    reason = policy.refusal(60, 41, 1e9)
    assert reason is not None and "60 tokens queued, limit 100" in reason


def test_latency_bound_is_opt_in() -> None:
    unbounded = AdmissionPolicy(max_queue_tokens=10**9)
    assert unbounded.refusal(50_000, 1_000, 1_000.0) is None  # 51 s of work: still admitted
    bounded = AdmissionPolicy(max_queue_tokens=10**9, max_queue_seconds=1.0)
    assert bounded.refusal(500, 400, 1_000.0) is None  # 0.9 s
    reason = bounded.refusal(500, 600, 1_000.0)  # 1.1 s
    assert reason is not None and "latency bound" in reason


def test_own_work_ends_with_a_whole_batch() -> None:
    """A short request queued behind others finishes with its batch, not after its own tokens."""
    small = AdmissionPolicy(max_queue_tokens=10**9, max_queue_seconds=1.0)
    assert small.refusal(100, 10, 1_000.0) is None  # 0.11 s
    batched = AdmissionPolicy(max_queue_tokens=10**9, max_queue_seconds=1.0, batch_tokens=1_000)
    assert batched.refusal(100, 10, 1_000.0) is not None  # 0.1 s ahead + a 1 s batch
    assert batched.refusal(0, 10, 1_000.0) is None  # empty queue: always admitted


def test_work_that_would_miss_its_deadline_is_refused() -> None:
    policy = AdmissionPolicy(max_queue_tokens=10**9)
    assert policy.refusal(5_000, 100, 1_000.0, remaining_s=10.0) is None  # 5.1 s of 7.5
    reason = policy.refusal(5_000, 100, 1_000.0, remaining_s=6.0)  # 5.1 s of 4.5
    # Long deadlines keep at most 30 s of margin: 560 s of work fits in a 600 s deadline.
    assert policy.refusal(560_000, 100, 1_000.0, remaining_s=600.0) is None
    assert policy.refusal(575_000, 100, 1_000.0, remaining_s=600.0) is not None
    assert reason is not None and "deadline" in reason


def test_retry_after_is_the_drain_time() -> None:
    assert retry_after_seconds(0, 5000.0) == 1
    assert retry_after_seconds(12_000, 5000.0) == 3
    assert retry_after_seconds(12_000, None) == 1


def test_speed_meter_follows_recent_batches() -> None:
    meter = SpeedMeter(1_000.0)
    for _ in range(60):
        meter.record(4_000, 1.0)
    assert 3_900 < meter.tokens_per_second < 4_001
    for _ in range(60):
        meter.record(500, 1.0)
    assert 450 < meter.tokens_per_second < 600


def test_default_queue_fits_the_heaviest_bounded_client() -> None:
    """128 concurrent requests x 64 inputs x 256 tokens must never be refused at defaults."""
    assert BatchingLimits().max_queue_tokens == 4_194_304 >= 128 * 64 * 256
    assert BatchingLimits().max_queue_seconds == 0


async def test_queue_limit_is_the_same_on_every_start(bundled_spec: ModelSpec) -> None:
    limits = []
    for delay in (0.0, 0.02):  # a different measured speed must not change the limit
        backend = FakeBackend(bundled_spec, delay_s=delay)
        runner = ModelRunner(bundled_spec, [MODEL_ID], lambda b=backend: b)
        await asyncio.to_thread(runner.load)
        assert runner.scheduler is not None
        limits.append(runner.scheduler.max_queue_tokens)
        runner.close()
    assert limits == [4_194_304, 4_194_304]


async def test_latency_bound_refuses_with_retry_after(bundled_spec: ModelSpec) -> None:
    backend = FakeBackend(bundled_spec, delay_s=0.2)
    scheduler = Scheduler(
        Executor(backend, bundled_spec),
        max_batch_tokens=64,
        max_queue_tokens=10**6,
        max_queue_seconds=0.5,
        tokens_per_second=100.0,  # 50 queued tokens = 0.5 s
    )
    scheduler.start()
    try:
        first = asyncio.ensure_future(scheduler.embed([[101] + [5] * 30 + [102]], l2_normalize))
        await until(lambda: len(backend.seen) == 1)  # running now, for 0.2 s
        second = asyncio.ensure_future(scheduler.embed([[101] + [6] * 30 + [102]], l2_normalize))
        await until(lambda: scheduler.queued_tokens == 32)
        with pytest.raises(Overloaded) as refused:
            await scheduler.embed([[101] + [7] * 30 + [102]], l2_normalize)
        assert "latency bound" in refused.value.message
        assert refused.value.retry_after_s >= 1
        await asyncio.gather(first, second)
        assert scheduler.stats.rejected_requests == 1
    finally:
        scheduler.stop()


async def test_request_deadline_answers_timeout_and_drops_the_work(
    bundled_spec: ModelSpec,
) -> None:
    runner, _ = fake_runner(bundled_spec, delay_s=0.3)
    engine = Engine([runner], request_timeout_s=0.2)
    await engine.start()
    try:
        loop = asyncio.get_running_loop()
        with pytest.raises(RequestTimeout) as timed_out:
            await engine.embed(["too slow"])
        assert timed_out.value.code == "timeout"
        assert runner.request_stats.timeouts == 1
        # The deadline is the one given (arrival time), not a fresh one.
        with pytest.raises(RequestTimeout, match="deadline"):
            await engine.embed_params(EmbedParams(texts=["late"]), deadline=loop.time() - 1)
    finally:
        await engine.stop()


async def test_tokenizer_bound_refuses_when_full(bundled_spec: ModelSpec) -> None:
    runner, _ = fake_runner(bundled_spec)
    engine = Engine([runner], max_tokenize_chars=1_000)
    await engine.start()
    try:
        texts = ["word " * 150]  # 750 characters each
        first = asyncio.ensure_future(engine.embed(texts))
        await asyncio.sleep(0)  # first is tokenizing now
        with pytest.raises(Overloaded) as refused:
            await engine.embed(texts)
        assert "--max-tokenize-chars" in refused.value.message
        assert runner.scheduler is not None and runner.scheduler.stats.rejected_requests == 1
        await first
        await engine.embed(texts)  # free again
    finally:
        await engine.stop()
