"""The executor: pad -> forward -> pool -> head, with the fake backend (which sees positions)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from embedserve.backends.fake import FakeBackend
from embedserve.executor import Executor
from embedserve.models import ModelSpec, Pooling

TEXTS = [[101, 7592, 2088, 102], [101, 2088, 102], [101, 2088, 7592, 102], [101, 5, 6, 7, 8, 102]]


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("pooling", list(Pooling))
def test_a_row_does_not_depend_on_its_batch_or_padding_side(
    bundled_spec: ModelSpec, side: str, pooling: Pooling
) -> None:
    spec = dataclasses.replace(bundled_spec, padding_side=side, pooling=pooling)
    executor = Executor(FakeBackend(spec), spec)
    together = executor.run(TEXTS)
    assert together.vectors.shape == (4, 384)
    assert together.real_tokens == 17 and together.padded_tokens == 24
    for row, ids in enumerate(TEXTS):
        alone = executor.run([ids]).vectors[0]
        np.testing.assert_allclose(together.vectors[row], alone, atol=1e-6)


def test_token_order_matters(bundled_spec: ModelSpec) -> None:
    """The fake backend sees positions, so an ordering bug cannot pass unnoticed."""
    executor = Executor(FakeBackend(bundled_spec), bundled_spec)
    hello_world, _, world_hello, _ = executor.run(TEXTS).vectors
    assert not np.allclose(hello_world, world_hello, atol=1e-3)


def test_a_padding_side_mismatch_changes_the_vectors(bundled_spec: ModelSpec) -> None:
    """Padding on one side while the mask says the other would be caught."""
    backend = FakeBackend(bundled_spec)
    ids = np.array([[101, 2088, 102, 0]], dtype=np.int64)
    right = backend.forward(ids, np.array([[1, 1, 1, 0]], dtype=np.int64))
    shifted = backend.forward(np.roll(ids, 1, axis=1), np.array([[0, 1, 1, 1]], dtype=np.int64))
    np.testing.assert_allclose(right[0, :3], shifted[0, 1:], atol=1e-6)
    wrong = backend.forward(ids, np.array([[0, 1, 1, 1]], dtype=np.int64))
    assert not np.allclose(right[0, :3], wrong[0, 1:], atol=1e-3)


def test_probe_and_speed(bundled_spec: ModelSpec) -> None:
    backend = FakeBackend(bundled_spec)
    executor = Executor(backend, bundled_spec)
    executor.probe()
    assert executor.measure_tokens_per_second(4096) > 0
    assert backend.batches == 3  # the probe, then two timed runs of one full batch
    assert len(backend.seen[-1]) == 64  # calibration rows of 64 tokens


def test_the_fake_backend_keeps_only_its_newest_records(bundled_spec: ModelSpec) -> None:
    """A long fake run keeps flat memory: `seen` holds at most SEEN_LIMIT token lists."""
    from embedserve.backends.fake import SEEN_LIMIT, FakeBackend

    backend = FakeBackend(bundled_spec)
    ids = np.arange(4, dtype=np.int64)[None].repeat(SEEN_LIMIT // 3, axis=0)
    for _ in range(4):
        backend.forward(ids, np.ones_like(ids))
    assert SEEN_LIMIT // 2 <= len(backend.seen) <= SEEN_LIMIT
    assert len(backend.widths) == 4 and backend.seen[-1] == [0, 1, 2, 3]
