"""The interface every runtime implements: padded token ids in, token embeddings out."""

from __future__ import annotations

import os
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


def compute_threads() -> int:
    """Threads for one forward pass: `OMP_NUM_THREADS` when set (Ray sets it to an actor's
    CPUs, as do container and batch schedulers), else every core."""
    given = os.environ.get("OMP_NUM_THREADS", "")
    return int(given) if given.isdigit() and int(given) > 0 else os.cpu_count() or 1


def thread_limits_env(cpus: float) -> dict[str, str]:
    """The environment that holds a worker to `cpus` cores (at least one): the forward pass
    (`OMP_NUM_THREADS`, read by `compute_threads`) and the tokenizers' Rayon pool, which
    otherwise takes every core of the machine. Ray actors get it in their `runtime_env`."""
    threads = str(max(1, int(cpus)))
    return {"OMP_NUM_THREADS": threads, "RAYON_NUM_THREADS": threads}
