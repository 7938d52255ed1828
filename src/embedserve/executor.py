"""One model's compute: pad -> forward -> pool -> Dense head -> one row per input.

The scheduler decides *which* inputs run together; the executor runs them. Warm-up, the
start-up speed measurement, the benchmarks and batch jobs call it too, so the pipeline exists
once."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from embedserve.arrays import FloatArray, IntArray
from embedserve.backends.base import Backend
from embedserve.models.dense import projection
from embedserve.models.spec import ModelSpec
from embedserve.pooling import pool

CALIBRATION_ROW_TOKENS = 64
SPEED_SAMPLE_TOKENS = 1024  # the startup speed sample: about a quarter of a default batch


def pad_batch(
    token_lists: Sequence[Sequence[int]], pad_id: int, side: str = "right", width: int = 0
) -> tuple[IntArray, IntArray]:
    """Pad token lists into `(input_ids, attention_mask)` int64 matrices, left or right, as
    wide as the longest list (or `width`, if wider)."""
    width = max(width, *(len(ids) for ids in token_lists))
    input_ids = np.full((len(token_lists), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(token_lists), width), dtype=np.int64)
    for row, ids in enumerate(token_lists):
        span = slice(width - len(ids), width) if side == "left" else slice(0, len(ids))
        input_ids[row, span] = ids
        mask[row, span] = 1
    return input_ids, mask


@dataclass(frozen=True)
class BatchOutput:
    """The pooled (and projected) rows of one batch, in input order, and what it cost."""

    vectors: FloatArray
    real_tokens: int
    padded_tokens: int


class Executor:
    """Runs batches of token lists through one loaded model (from one thread at a time)."""

    def __init__(self, backend: Backend, spec: ModelSpec, *, deterministic: bool = False) -> None:
        self.backend = backend
        self.spec = spec
        self.deterministic = deterministic  # project row by row: a row's result is its own
        self._project = projection(spec.dense_dirs)  # the sentence-transformers Dense head

    def run(self, token_lists: Sequence[Sequence[int]], *, width: int = 0) -> BatchOutput:
        """Pad with the model's pad id on its padding side (to `width` at least), forward, pool,
        project."""
        spec = self.spec
        input_ids, mask = pad_batch(token_lists, spec.pad_token_id, spec.padding_side, width)
        hidden = self.backend.forward(input_ids, mask)
        if spec.score_head is not None:  # a cross-encoder's logits, one row per pair
            return BatchOutput(hidden, int(mask.sum()), int(mask.size))
        pooled = pool(hidden, mask, spec.pooling)
        if self._project is not None:
            if self.deterministic:  # a matrix product's rows may depend on how many there are
                pooled = np.concatenate([self._project(row[None]) for row in pooled])
            else:
                pooled = self._project(pooled)
        return BatchOutput(pooled, int(mask.sum()), int(mask.size))

    def probe(self) -> None:
        """One tiny batch: raises if the model cannot run now."""
        self.run([[self._filler_token] * 4])

    def measure_tokens_per_second(self, batch_tokens: int) -> float:
        """Padded tokens per second of a batch of up to `SPEED_SAMPLE_TOKENS` (best of two runs;
        warm up first): the scheduler's first estimate, which real batches then refine. A
        whole batch at the default size took two seconds of every start on 2 CPU cores."""
        rows = max(min(batch_tokens, SPEED_SAMPLE_TOKENS) // CALIBRATION_ROW_TOKENS, 1)
        width = min(CALIBRATION_ROW_TOKENS, self.spec.max_length)
        batch = [[self._filler_token] * width] * rows
        best = math.inf
        for _ in range(2):
            started = time.perf_counter()
            self.run(batch)
            best = min(best, time.perf_counter() - started)
        return rows * width / max(best, 1e-6)

    def close(self) -> None:
        """Release the backend."""
        self.backend.close()

    @property
    def _filler_token(self) -> int:
        return min(1000, self.spec.vocab_size - 1)
