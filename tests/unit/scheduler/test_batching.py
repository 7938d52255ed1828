"""Pure batch selection (`select_batch`) and padding of a batch (`pad_batch`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from embedserve.executor import pad_batch
from embedserve.scheduler.batching import BatchShape, bucket_length, select_batch


def padded_cost(lengths: Sequence[int]) -> int:
    """Tokens the device really processes for a batch padded to its longest item."""
    return max(lengths, default=0) * len(lengths)


lengths_strategy = st.lists(st.integers(1, 600), min_size=1, max_size=80)
budget_strategy = st.integers(1, 4096)
size_strategy = st.integers(1, 64)
window_strategy = st.integers(1, 100)


def drain(
    lengths: list[int], *, max_batch_tokens: int, max_batch_size: int, window: int
) -> list[list[int]]:
    """Call `select_batch` until nothing is pending; batches as lists of original indices."""
    pending = list(range(len(lengths)))
    batches: list[list[int]] = []
    while pending:
        positions = select_batch(
            [lengths[i] for i in pending],
            max_batch_tokens=max_batch_tokens,
            max_batch_size=max_batch_size,
            window=window,
        )
        assert positions, "select_batch returned nothing while items were pending"
        batches.append([pending[p] for p in positions])
        chosen = set(positions)
        pending = [item for p, item in enumerate(pending) if p not in chosen]
    return batches


def fifo_batches(lengths: list[int], *, max_batch_tokens: int) -> list[list[int]]:
    """Cut in arrival order under the same padded-token budget, no sorting."""
    batches: list[list[int]] = []
    current: list[int] = []
    for index, length in enumerate(lengths):
        longest = max([lengths[i] for i in current] + [length])
        if current and longest * (len(current) + 1) > max_batch_tokens:
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def total_padded(lengths: list[int], batches: list[list[int]]) -> int:
    return sum(padded_cost([lengths[i] for i in batch]) for batch in batches)


def test_empty_input_gives_empty_batch() -> None:
    assert select_batch([], max_batch_tokens=100, max_batch_size=8, window=8) == []


def test_padded_cost() -> None:
    assert padded_cost([]) == 0
    assert padded_cost([3, 7, 5]) == 21
    assert padded_cost([10]) == 10


def test_known_selection() -> None:
    # Sorted by length: pos 1 (2), pos 3 (3), pos 0 (5), pos 2 (9).
    # Budget 12: [1, 3] costs 6, adding pos 0 would cost 15 -> cut; [0, 2] would cost 18 -> [0].
    lengths = [5, 2, 9, 3]
    assert select_batch(lengths, max_batch_tokens=12, max_batch_size=8, window=8) == [0]
    assert select_batch(lengths, max_batch_tokens=15, max_batch_size=8, window=8) == [1, 3, 0]
    # Size 2: [1, 3] is full, then [0, 2] costs 18 (fits a budget of 18, not one of 15).
    assert select_batch(lengths, max_batch_tokens=18, max_batch_size=2, window=8) == [0, 2]
    assert select_batch(lengths, max_batch_tokens=15, max_batch_size=2, window=8) == [0]
    assert select_batch(lengths, max_batch_tokens=100, max_batch_size=8, window=8) == [1, 3, 0, 2]


def test_item_longer_than_budget_goes_alone() -> None:
    assert select_batch([500, 1, 1], max_batch_tokens=100, max_batch_size=8, window=8) == [0]
    assert select_batch([1, 500, 1], max_batch_tokens=100, max_batch_size=8, window=8) == [0, 2]


def test_window_limits_what_is_considered() -> None:
    lengths = [10, 10, 1, 1, 1]
    assert select_batch(lengths, max_batch_tokens=1000, max_batch_size=64, window=2) == [0, 1]
    assert select_batch(lengths, max_batch_tokens=1000, max_batch_size=64, window=5) == [
        2,
        3,
        4,
        0,
        1,
    ]


@settings(max_examples=300, deadline=None)
@given(
    lengths=lengths_strategy,
    max_batch_tokens=budget_strategy,
    max_batch_size=size_strategy,
    window=window_strategy,
)
def test_select_batch_properties(
    lengths: list[int], max_batch_tokens: int, max_batch_size: int, window: int
) -> None:
    batch = select_batch(
        lengths, max_batch_tokens=max_batch_tokens, max_batch_size=max_batch_size, window=window
    )
    assert batch, "a non-empty pending list always yields a batch"
    assert len(set(batch)) == len(batch)
    assert all(0 <= p < len(lengths) for p in batch)
    assert all(p < window for p in batch)
    assert 0 in batch
    assert len(batch) <= max_batch_size
    if len(batch) > 1:
        assert padded_cost([lengths[p] for p in batch]) <= max_batch_tokens
    batch_lengths = [lengths[p] for p in batch]
    assert batch_lengths == sorted(batch_lengths)


@settings(max_examples=100, deadline=None)
@given(
    lengths=lengths_strategy,
    max_batch_tokens=budget_strategy,
    max_batch_size=size_strategy,
    window=window_strategy,
)
def test_draining_schedules_every_item_exactly_once(
    lengths: list[int], max_batch_tokens: int, max_batch_size: int, window: int
) -> None:
    batches = drain(
        lengths, max_batch_tokens=max_batch_tokens, max_batch_size=max_batch_size, window=window
    )
    scheduled = [item for batch in batches for item in batch]
    assert sorted(scheduled) == list(range(len(lengths)))
    # Every batch holds the oldest item still pending, so nothing waits forever.
    served: set[int] = set()
    for batch in batches:
        oldest_left = min(set(range(len(lengths))) - served)
        assert oldest_left in batch
        served.update(batch)


def test_sorting_reduces_padding_versus_fifo() -> None:
    rng = np.random.default_rng(7)
    # A mixed workload: mostly short texts with some long ones interleaved.
    lengths = [
        int(x) for x in rng.choice([8, 12, 16, 200, 256], size=400, p=[0.3, 0.3, 0.2, 0.1, 0.1])
    ]
    budget = 4096
    sorted_batches = drain(lengths, max_batch_tokens=budget, max_batch_size=512, window=1024)
    fifo = fifo_batches(lengths, max_batch_tokens=budget)
    real = sum(lengths)
    sorted_padded = total_padded(lengths, sorted_batches)
    fifo_padded = total_padded(lengths, fifo)
    assert real <= sorted_padded
    assert real <= fifo_padded
    # Sorting leaves little waste; arrival order pads short texts up to the long ones.
    assert sorted_padded < 0.5 * fifo_padded
    assert sorted_padded - real < 0.25 * (fifo_padded - real)


def test_pad_batch_right() -> None:
    ids, mask = pad_batch([[5, 6, 7], [8], [9, 10]], pad_id=0, side="right")
    np.testing.assert_array_equal(ids, [[5, 6, 7], [8, 0, 0], [9, 10, 0]])
    np.testing.assert_array_equal(mask, [[1, 1, 1], [1, 0, 0], [1, 1, 0]])
    assert ids.dtype == np.int64
    assert mask.dtype == np.int64


def test_pad_batch_left() -> None:
    ids, mask = pad_batch([[5, 6, 7], [8], [9, 10]], pad_id=-1, side="left")
    np.testing.assert_array_equal(ids, [[5, 6, 7], [-1, -1, 8], [-1, 9, 10]])
    np.testing.assert_array_equal(mask, [[1, 1, 1], [0, 0, 1], [0, 1, 1]])


def test_pad_batch_default_is_right() -> None:
    ids, mask = pad_batch([[1], [2, 3]], pad_id=0)
    np.testing.assert_array_equal(ids, [[1, 0], [2, 3]])
    np.testing.assert_array_equal(mask, [[1, 0], [1, 1]])


@settings(max_examples=150, deadline=None)
@given(
    token_lists=st.lists(
        st.lists(st.integers(1, 30521), min_size=1, max_size=20), min_size=1, max_size=10
    ),
    side=st.sampled_from(["left", "right"]),
    pad_id=st.integers(-5, 0),
)
def test_pad_batch_properties(token_lists: list[list[int]], side: str, pad_id: int) -> None:
    ids, mask = pad_batch(token_lists, pad_id=pad_id, side=side)
    width = max(len(t) for t in token_lists)
    assert ids.shape == mask.shape == (len(token_lists), width)
    for row, tokens in enumerate(token_lists):
        assert int(mask[row].sum()) == len(tokens)
        # The real tokens, in order, are exactly where the mask is 1.
        assert ids[row][mask[row] == 1].tolist() == tokens
        assert np.all(ids[row][mask[row] == 0] == pad_id)
        real = np.flatnonzero(mask[row])
        # Contiguous, at the right edge for left padding and at the left edge for right padding.
        assert real.tolist() == list(range(real[0], real[0] + len(tokens)))
        if side == "left":
            assert real[-1] == width - 1
        else:
            assert real[0] == 0


@given(
    lengths=st.lists(st.integers(1, 300), min_size=1, max_size=80),
    max_padding=st.sampled_from([0.0, 0.05, 0.25, 0.5]),
)
def test_padding_share_stays_within_the_limit(lengths: list[int], max_padding: float) -> None:
    batch = select_batch(
        lengths, max_batch_tokens=100_000, max_batch_size=512, window=1024, max_padding=max_padding
    )
    assert 0 in batch
    chosen = [lengths[p] for p in batch]
    if len(chosen) > 1:
        padded = padded_cost(chosen)
        assert padded - sum(chosen) <= max_padding * padded


def test_padding_limit_splits_mixed_lengths() -> None:
    lengths = [10, 100, 11, 98, 12]
    unlimited = select_batch(lengths, max_batch_tokens=4096, max_batch_size=512, window=1024)
    assert sorted(unlimited) == [0, 1, 2, 3, 4]
    tight = select_batch(
        lengths, max_batch_tokens=4096, max_batch_size=512, window=1024, max_padding=0.25
    )
    assert sorted(tight) == [0, 2, 4]  # the short ones, with the oldest item


def test_bucket_length_is_decided_by_the_length_alone() -> None:
    assert [bucket_length(n, 16, 256) for n in (1, 15, 16, 17, 250, 256)] == [
        16,
        16,
        16,
        32,
        256,
        256,
    ]
    assert bucket_length(510, 16, 514) == 512 and bucket_length(513, 16, 514) == 514


def test_pad_batch_to_a_given_width() -> None:
    ids, mask = pad_batch([[1], [2, 3]], pad_id=0, width=4)
    np.testing.assert_array_equal(ids, [[1, 0, 0, 0], [2, 3, 0, 0]])
    assert mask.sum() == 3
    assert pad_batch([[1, 2, 3]], pad_id=0, width=2)[0].shape == (1, 3)  # never cuts


@settings(max_examples=200, deadline=None)
@given(lengths=lengths_strategy, max_batch_tokens=budget_strategy, window=window_strategy)
def test_deterministic_batches_hold_one_bucket(
    lengths: list[int], max_batch_tokens: int, window: int
) -> None:
    shape = BatchShape(max_batch_tokens, 64, window, 0.05, bucket=16, max_length=1024)
    remaining = list(range(len(lengths)))
    while remaining:
        picked = shape.select([lengths[i] for i in remaining])
        assert picked and 0 in picked  # the oldest is always served
        widths = {shape.width(lengths[remaining[p]]) for p in picked}
        assert len(widths) == 1 and widths.pop() % 16 == 0
        remaining = [item for p, item in enumerate(remaining) if p not in set(picked)]
