"""Pure batch selection: which pending items go into the next forward pass."""

from __future__ import annotations

from collections.abc import Sequence


def padded_cost(lengths: Sequence[int]) -> int:
    """Tokens the device really processes for a batch padded to its longest item."""
    return max(lengths, default=0) * len(lengths)


def select_batch(
    lengths: Sequence[int], *, max_batch_tokens: int, max_batch_size: int, window: int
) -> list[int]:
    """Pick the next batch from items pending in arrival order (index 0 is the oldest).

    The first `window` items are sorted by length and cut greedily into batches whose padded
    size stays within `max_batch_tokens` (an item longer than the budget goes alone). The batch
    that holds the oldest item is returned, so nothing waits behind newer work forever.
    Returns positions into `lengths`, shortest first.
    """
    if not lengths:
        return []
    order = sorted(range(min(window, len(lengths))), key=lambda i: lengths[i])
    batch: list[int] = []
    for position in order:
        fits = (len(batch) + 1) * lengths[position] <= max_batch_tokens
        if batch and (not fits or len(batch) >= max_batch_size):
            if 0 in batch:
                return batch
            batch = []
        batch.append(position)
    return batch
