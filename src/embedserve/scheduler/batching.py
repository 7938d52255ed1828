"""Pure batch selection: which pending items go into the next forward pass."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from embedserve.backends.base import IntArray


def padded_cost(lengths: Sequence[int]) -> int:
    """Tokens the device really processes for a batch padded to its longest item."""
    return max(lengths, default=0) * len(lengths)


def select_batch(
    lengths: Sequence[int],
    *,
    max_batch_tokens: int,
    max_batch_size: int,
    window: int,
    max_padding: float = 1.0,
) -> list[int]:
    """Pick the next batch from items pending in arrival order (index 0 is the oldest).

    The first `window` items are sorted by length and cut greedily into batches whose padded
    size stays within `max_batch_tokens` (an item longer than the budget goes alone) and whose
    share of padding stays within `max_padding` (0.25: at most a quarter of the computed tokens
    are padding; 1.0: no limit). The batch that holds the oldest item is returned, so nothing
    waits behind newer work forever. Returns positions into `lengths`, shortest first.
    """
    if not lengths:
        return []
    order = sorted(range(min(window, len(lengths))), key=lambda i: lengths[i])
    batch: list[int] = []
    real = 0
    for position in order:
        length = lengths[position]
        padded = (len(batch) + 1) * length
        fits = padded <= max_batch_tokens and padded - real - length <= max_padding * padded
        if batch and (not fits or len(batch) >= max_batch_size):
            if 0 in batch:
                return batch
            batch, real = [], 0
        batch.append(position)
        real += length
    return batch


def pad_batch(
    token_lists: Sequence[Sequence[int]], pad_id: int, side: str = "right"
) -> tuple[IntArray, IntArray]:
    """Pad token lists into `(input_ids, attention_mask)` int64 matrices, left or right."""
    width = max(len(ids) for ids in token_lists)
    input_ids = np.full((len(token_lists), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(token_lists), width), dtype=np.int64)
    for row, ids in enumerate(token_lists):
        span = slice(width - len(ids), width) if side == "left" else slice(0, len(ids))
        input_ids[row, span] = ids
        mask[row, span] = 1
    return input_ids, mask
