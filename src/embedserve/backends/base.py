"""The interface every runtime implements: padded token ids in, token embeddings out."""

from __future__ import annotations

from typing import Protocol

from embedserve.arrays import FloatArray, IntArray


class Backend(Protocol):
    """A loaded model on one device. `forward` is called from one thread at a time."""

    name: str

    def forward(self, input_ids: IntArray, attention_mask: IntArray) -> FloatArray:
        """Token embeddings (batch, seq, hidden) as float32 for a padded batch."""
        ...

    def close(self) -> None:
        """Release the model."""
        ...
