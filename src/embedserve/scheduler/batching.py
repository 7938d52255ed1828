"""Pure batch selection: which pending items go into the next forward pass."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


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


@dataclass(frozen=True)
class BatchShape:
    """The limits `select_batch` applies, held by a scheduler."""

    max_batch_tokens: int
    max_batch_size: int
    window: int
    max_padding: float = 1.0

    def select(self, lengths: Sequence[int]) -> list[int]:
        """`select_batch` under these limits."""
        return select_batch(
            lengths,
            max_batch_tokens=self.max_batch_tokens,
            max_batch_size=self.max_batch_size,
            window=self.window,
            max_padding=self.max_padding,
        )
