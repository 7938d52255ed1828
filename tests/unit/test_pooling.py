"""The numpy pooling reference against a straightforward per-row computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from embedserve.models.spec import Pooling
from embedserve.pooling import first_token_index, last_token_index, pool

HUGE = np.float32(1e30)


def reference(hidden: np.ndarray, mask: np.ndarray, method: Pooling) -> np.ndarray:
    """Pool each row by looking only at its real tokens, in float64."""
    rows = []
    for h, m in zip(hidden, mask, strict=True):
        real = h[m > 0].astype(np.float64)
        assert real.shape[0] >= 1
        if method is Pooling.CLS:
            rows.append(real[0])
        elif method is Pooling.LAST:
            rows.append(real[-1])
        elif method is Pooling.MEAN:
            rows.append(real.mean(axis=0))
        else:
            rows.append(real.max(axis=0))
    return np.stack(rows)


def make_mask(lengths: list[int], width: int, side: str) -> np.ndarray:
    mask = np.zeros((len(lengths), width), dtype=np.int64)
    for row, length in enumerate(lengths):
        if side == "left":
            mask[row, width - length :] = 1
        else:
            mask[row, :length] = 1
    return mask


def poison_padding(hidden: np.ndarray, mask: np.ndarray, value: np.float32) -> np.ndarray:
    poisoned = hidden.copy()
    poisoned[mask == 0] = value
    return poisoned


@pytest.fixture
def example() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two rows, width 4, dim 2: row 0 has 2 real tokens, row 1 has 4."""
    hidden = np.array(
        [
            [[1.0, -2.0], [3.0, 4.0], [HUGE, HUGE], [HUGE, -HUGE]],
            [[0.0, 1.0], [2.0, -3.0], [4.0, 5.0], [-6.0, 7.0]],
        ],
        dtype=np.float32,
    )
    right = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=np.int64)
    # The same row-0 tokens, left padded.
    hidden_left = hidden.copy()
    hidden_left[0] = [[HUGE, HUGE], [-HUGE, HUGE], [1.0, -2.0], [3.0, 4.0]]
    return hidden, right, hidden_left


@pytest.mark.parametrize(
    ("method", "expected_row0"),
    [
        (Pooling.CLS, [1.0, -2.0]),
        (Pooling.LAST, [3.0, 4.0]),
        (Pooling.MEAN, [2.0, 1.0]),
        (Pooling.MAX, [3.0, 4.0]),
    ],
)
def test_hand_computed_values_right_and_left_padding(
    example: tuple[np.ndarray, np.ndarray, np.ndarray],
    method: Pooling,
    expected_row0: list[float],
) -> None:
    hidden, right, hidden_left = example
    left = right[:, ::-1].copy()
    full_row = {
        Pooling.CLS: [0.0, 1.0],
        Pooling.LAST: [-6.0, 7.0],
        Pooling.MEAN: [0.0, 2.5],
        Pooling.MAX: [4.0, 7.0],
    }[method]
    expected = np.array([expected_row0, full_row], dtype=np.float32)
    np.testing.assert_array_equal(pool(hidden, right, method), expected)
    np.testing.assert_array_equal(pool(hidden_left, left, method), expected)


def test_index_helpers_right_and_left() -> None:
    right = make_mask([3, 1, 5], 5, "right")
    left = make_mask([3, 1, 5], 5, "left")
    np.testing.assert_array_equal(first_token_index(right), [0, 0, 0])
    np.testing.assert_array_equal(last_token_index(right), [2, 0, 4])
    np.testing.assert_array_equal(first_token_index(left), [2, 4, 0])
    np.testing.assert_array_equal(last_token_index(left), [4, 4, 4])


def test_output_is_contiguous_float32() -> None:
    hidden = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    mask = make_mask([2, 3], 3, "left")
    for method in Pooling:
        out = pool(hidden, mask, method)
        assert out.dtype == np.float32
        assert out.shape == (2, 4)
        assert out.flags["C_CONTIGUOUS"]


def test_mean_matches_sentence_transformers_torch_formula() -> None:
    """The torch mean pooling of sentence-transformers, on the same numbers."""
    rng = np.random.default_rng(0)
    hidden = rng.standard_normal((4, 7, 5)).astype(np.float32)
    mask = make_mask([7, 1, 4, 2], 7, "right")
    h = torch.from_numpy(hidden)
    m = torch.from_numpy(mask).unsqueeze(-1).float()
    expected = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
    np.testing.assert_allclose(pool(hidden, mask, Pooling.MEAN), expected.numpy(), rtol=1e-6)


@st.composite
def batches(draw: st.DrawFn) -> tuple[np.ndarray, list[int], int, str]:
    batch = draw(st.integers(1, 6))
    width = draw(st.integers(1, 9))
    dim = draw(st.integers(1, 5))
    lengths = draw(st.lists(st.integers(1, width), min_size=batch, max_size=batch))
    side = draw(st.sampled_from(["left", "right"]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    hidden = (rng.standard_normal((batch, width, dim)) * 100).astype(np.float32)
    return hidden, lengths, width, side


@settings(max_examples=150, deadline=None)
@given(data=batches(), method=st.sampled_from(list(Pooling)))
def test_pool_matches_per_row_reference(
    data: tuple[np.ndarray, list[int], int, str], method: Pooling
) -> None:
    hidden, lengths, width, side = data
    mask = make_mask(lengths, width, side)
    np.testing.assert_allclose(
        pool(hidden, mask, method), reference(hidden, mask, method), rtol=1e-5, atol=1e-4
    )


@settings(max_examples=150, deadline=None)
@given(
    data=batches(),
    method=st.sampled_from(list(Pooling)),
    poison=st.sampled_from([HUGE, -HUGE, np.float32(3e38), np.float32(-3e38)]),
)
def test_padding_values_never_influence_the_result(
    data: tuple[np.ndarray, list[int], int, str], method: Pooling, poison: np.float32
) -> None:
    hidden, lengths, width, side = data
    mask = make_mask(lengths, width, side)
    clean = pool(hidden, mask, method)
    poisoned = pool(poison_padding(hidden, mask, poison), mask, method)
    np.testing.assert_array_equal(poisoned, clean)
    assert np.all(np.abs(poisoned) < 1e10)


@settings(max_examples=100, deadline=None)
@given(data=batches(), method=st.sampled_from(list(Pooling)))
def test_left_and_right_padding_agree(
    data: tuple[np.ndarray, list[int], int, str], method: Pooling
) -> None:
    """The same real tokens, padded on either side, pool to the same vector."""
    hidden, lengths, width, _ = data
    right_mask = make_mask(lengths, width, "right")
    left_mask = make_mask(lengths, width, "left")
    left_hidden = np.full_like(hidden, HUGE)
    for row, length in enumerate(lengths):
        left_hidden[row, width - length :] = hidden[row, :length]
    np.testing.assert_allclose(
        pool(left_hidden, left_mask, method),
        pool(hidden, right_mask, method),
        rtol=1e-6,
        atol=1e-5,
    )


@settings(max_examples=50, deadline=None)
@given(data=batches())
def test_cls_and_last_pick_first_and_last_real_tokens(
    data: tuple[np.ndarray, list[int], int, str],
) -> None:
    hidden, lengths, width, side = data
    mask = make_mask(lengths, width, side)
    first = 0 if side == "right" else None
    for row, length in enumerate(lengths):
        start = first if first is not None else width - length
        np.testing.assert_array_equal(pool(hidden, mask, Pooling.CLS)[row], hidden[row, start])
        np.testing.assert_array_equal(
            pool(hidden, mask, Pooling.LAST)[row], hidden[row, start + length - 1]
        )


@pytest.mark.parametrize("poison", [np.inf, -np.inf, np.nan])
def test_mean_ignores_non_finite_padding(poison: float) -> None:
    hidden = np.array([[[1.0, 2.0], [3.0, 4.0], [0.0, 0.0]]], dtype=np.float32)
    mask = np.array([[1, 1, 0]], dtype=np.int64)
    hidden[0, 2] = poison
    with np.errstate(invalid="ignore"):
        out = pool(hidden, mask, Pooling.MEAN)
    np.testing.assert_array_equal(out, [[2.0, 3.0]])


def test_max_of_very_negative_real_values() -> None:
    hidden = np.array([[[-5e9, 1.0], [-3e9, 2.0], [0.0, 0.0]]], dtype=np.float32)
    mask = np.array([[1, 1, 0]], dtype=np.int64)
    np.testing.assert_array_equal(pool(hidden, mask, Pooling.MAX), [[-3e9, 2.0]])
