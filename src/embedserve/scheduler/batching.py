"""Pure batch selection: which pending items go into the next forward pass."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def bucket_length(length: int, bucket: int, max_length: int) -> int:
    """The width an input of `length` tokens is padded to in deterministic mode: the next
    multiple of `bucket`, at most `max_length` (its own length alone decides it)."""
    return max(length, min(-(-length // bucket) * bucket, max_length))


def select_batch(
    lengths: Sequence[int],
    *,
    max_batch_tokens: int,
    max_batch_size: int,
    window: int,
    max_padding: float = 1.0,
    same_length: bool = False,
) -> list[int]:
    """Pick the next batch from items pending in arrival order (index 0 is the oldest).

    The first `window` items are sorted by length and cut greedily into batches whose padded
    size stays within `max_batch_tokens` (an item longer than the budget goes alone) and whose
    share of padding stays within `max_padding` (0.25: at most a quarter of the computed tokens
    are padding; 1.0: no limit). The batch that holds the oldest item is returned, so nothing
    waits behind newer work forever. Returns positions into `lengths`, shortest first.
    `same_length` keeps items of different lengths apart (deterministic mode: each batch is
    one bucket).
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
        if same_length and batch:
            fits = fits and length == lengths[batch[0]]
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
    bucket: int = 0  # deterministic mode: pad each input to a multiple of this (0: off)
    max_length: int = 0  # the model's, which no bucket exceeds

    def width(self, length: int) -> int:
        """What an input of `length` tokens is padded to at least (its own length, or its
        bucket in deterministic mode)."""
        return bucket_length(length, self.bucket, self.max_length) if self.bucket else length

    def select(self, lengths: Sequence[int]) -> list[int]:
        """`select_batch` under these limits (over bucket widths in deterministic mode)."""
        return select_batch(
            [self.width(length) for length in lengths],
            max_batch_tokens=self.max_batch_tokens,
            max_batch_size=self.max_batch_size,
            window=self.window,
            max_padding=self.max_padding,
            same_length=self.bucket > 0,
        )
