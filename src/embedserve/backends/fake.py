"""A deterministic fake runtime for fast scheduler and API tests (no model weights involved)."""

from __future__ import annotations

import threading
import time

import numpy as np

from embedserve.arrays import FloatArray, IntArray
from embedserve.models.spec import ModelSpec

_POSITION_STEP = np.float32(0.713)
# What `seen` and `widths` keep: the newest entries only, so that a long run on the fake backend
# (a benchmark of a million texts) keeps flat memory; tests look at far fewer.
SEEN_LIMIT = 10_000


class DeviceThreadKilled(BaseException):
    """Raised by the fake backend to kill the thread that runs it (fault injection)."""


class FakeBackend:
    """Token embeddings computed from the token ids alone, so vectors are reproducible.

    `delay_s` slows each batch down; a batch containing `fail_token_id` raises; one containing
    `kill_token_id` raises `DeviceThreadKilled`, which ends the device thread; every batch's
    token ids are recorded in `seen` (the newest `SEEN_LIMIT`) so tests can tell what reached
    the "device".
    """

    name = "fake"

    def __init__(
        self,
        spec: ModelSpec,
        *,
        delay_s: float = 0.0,
        fail_token_id: int | None = None,
        kill_token_id: int | None = None,
    ) -> None:
        self.dimension = spec.dimension
        self.delay_s = delay_s
        self.fail_token_id = fail_token_id
        self.kill_token_id = kill_token_id
        self.seen: list[list[int]] = []
        self.widths: list[int] = []  # the padded width of each batch
        self.batches = 0
        self._lock = threading.Lock()
        self._freqs = np.arange(1, self.dimension + 1, dtype=np.float32) * np.float32(0.37)

    def forward(self, input_ids: IntArray, attention_mask: IntArray) -> FloatArray:
        """Sinusoids of token id and position: cheap, deterministic, distinct per text and
        per token order."""
        with self._lock:
            self.batches += 1
            self.widths.append(int(input_ids.shape[1]))
            self.seen.extend(
                row[mask > 0].tolist() for row, mask in zip(input_ids, attention_mask, strict=True)
            )
            for kept in (self.seen, self.widths):
                if len(kept) > SEEN_LIMIT:
                    del kept[: len(kept) - SEEN_LIMIT // 2]
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail_token_id is not None and bool((input_ids == self.fail_token_id).any()):
            raise RuntimeError(f"fake backend failure on token {self.fail_token_id}")
        if self.kill_token_id is not None and bool((input_ids == self.kill_token_id).any()):
            raise DeviceThreadKilled(f"fake backend killed its thread on {self.kill_token_id}")
        # Position counts real tokens only, so a text gets the same vectors whatever it is
        # batched with and on either padding side, and a reordered text different ones.
        positions = (np.cumsum(attention_mask, axis=1) - 1).clip(min=0).astype(np.float32)
        ids = input_ids.astype(np.float32)[:, :, None]
        phase = ids * self._freqs[None, None, :] + positions[:, :, None] * _POSITION_STEP
        vectors: FloatArray = np.sin(phase).astype(np.float32)
        return vectors

    def close(self) -> None:
        """Nothing to release."""
