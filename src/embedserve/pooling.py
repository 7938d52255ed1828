"""The one reference implementation of pooling: token embeddings -> one vector per input."""

from __future__ import annotations

import numpy as np

from embedserve.arrays import FloatArray, IntArray
from embedserve.models.spec import Pooling


def first_token_index(mask: IntArray) -> IntArray:
    """Index of the first real (unmasked) token of each row; works for left or right padding."""
    index: IntArray = np.argmax(mask > 0, axis=1).astype(np.int64)
    return index


def last_token_index(mask: IntArray) -> IntArray:
    """Index of the last real token of each row; works for left or right padding."""
    width = mask.shape[1]
    index: IntArray = (width - 1 - np.argmax(mask[:, ::-1] > 0, axis=1)).astype(np.int64)
    return index


def pool(hidden: FloatArray, mask: IntArray, method: Pooling) -> FloatArray:
    """Pool `hidden` (batch, seq, dim) under `mask` (batch, seq) into (batch, dim) float32."""
    rows = np.arange(hidden.shape[0])
    if method is Pooling.CLS:
        out = hidden[rows, first_token_index(mask)]
    elif method is Pooling.LAST:
        out = hidden[rows, last_token_index(mask)]
    elif method is Pooling.MEAN:
        real = mask[:, :, None] > 0
        summed = np.where(real, hidden, np.float32(0)).sum(axis=1)  # padding never leaks, inf too
        out = summed / np.clip(real.sum(axis=1), 1, None).astype(np.float32)
    elif method is Pooling.MAX:
        masked = np.where(mask[:, :, None] > 0, hidden, np.float32(-np.inf))
        out = masked.max(axis=1)
    else:  # pragma: no cover - exhaustive over the enum
        raise ValueError(f"unknown pooling {method}")
    return np.ascontiguousarray(out, dtype=np.float32)
