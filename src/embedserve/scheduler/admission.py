"""Admission control sizing: how many queued tokens a model may hold, from its measured speed."""

from __future__ import annotations

import math
import time

from embedserve.backends.base import Backend
from embedserve.models.spec import ModelSpec
from embedserve.scheduler.batching import pad_batch

CALIBRATION_ROW_TOKENS = 64


def measure_tokens_per_second(backend: Backend, spec: ModelSpec, batch_tokens: int) -> float:
    """Padded tokens per second of one full batch (best of two runs, after the warm-up)."""
    rows = max(batch_tokens // CALIBRATION_ROW_TOKENS, 1)
    width = min(CALIBRATION_ROW_TOKENS, spec.max_length)
    token = min(1000, spec.vocab_size - 1)
    input_ids, mask = pad_batch([[token] * width] * rows, spec.pad_token_id, spec.padding_side)
    best = math.inf
    for _ in range(2):
        started = time.perf_counter()
        backend.forward(input_ids, mask)
        best = min(best, time.perf_counter() - started)
    return input_ids.size / max(best, 1e-6)


def auto_queue_tokens(tokens_per_second: float, max_input_tokens: int, seconds: float) -> int:
    """Queue about `seconds` of work, but never less than one input of the model's max length."""
    return max(max_input_tokens, int(tokens_per_second * seconds))


def retry_after_seconds(queued_tokens: int, tokens_per_second: float | None) -> int:
    """Whole seconds until the queue has drained (at least 1)."""
    if not tokens_per_second:
        return 1
    return max(1, math.ceil(queued_tokens / tokens_per_second))
