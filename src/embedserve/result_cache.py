"""The result cache of one model (`--cache-entries`): an LRU of the vectors the model produced,
keyed by the exact token ids it was fed (prompt, truncation and windows included), holding the
pooled vector *before* post-processing, so every request's own `dimensions`, `normalize` and
`output_dtype` apply to a hit exactly as to a miss."""

from __future__ import annotations

import array
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from embedserve.arrays import FloatArray
from embedserve.scheduler import Scheduler
from embedserve.scheduler.work import Finisher


@dataclass
class CacheStats:
    """Counters for /metrics: inputs answered without the model (cached, or repeated within
    their request), inputs computed, entries dropped."""

    hits: int = 0
    misses: int = 0
    evictions: int = 0


def cache_key(token_ids: Sequence[int]) -> bytes:
    """The token ids as bytes: equal keys, equal model inputs."""
    return array.array("i", token_ids).tobytes()  # ids are below the vocabulary size


class ResultCache:
    """A thread-safe LRU of `entries` raw vectors (looked up on the event loop, filled on the
    device thread)."""

    def __init__(self, entries: int) -> None:
        if entries < 1:
            raise ValueError("a result cache holds at least one entry")
        self.entries = entries
        self.stats = CacheStats()
        self._rows: OrderedDict[bytes, FloatArray] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        """Vectors held now (no `__len__`: an empty cache must not read as no cache)."""
        return len(self._rows)

    def get_many(self, keys: Sequence[bytes]) -> list[FloatArray | None]:
        """The cached vector of each key, or None; hits become the most recent."""
        found: list[FloatArray | None] = []
        with self._lock:
            for key in keys:
                row = self._rows.get(key)
                if row is not None:
                    self._rows.move_to_end(key)
                found.append(row)
        return found

    def put_many(self, keys: Sequence[bytes], rows: FloatArray) -> None:
        """Store one vector per key, dropping the least recently used beyond `entries`."""
        with self._lock:
            for key, row in zip(keys, rows, strict=True):
                self._rows[key] = row.copy()
                self._rows.move_to_end(key)
            while len(self._rows) > self.entries:
                self._rows.popitem(last=False)
                self.stats.evictions += 1


async def embed_cached(
    scheduler: Scheduler,
    cache: ResultCache | None,
    token_lists: Sequence[Sequence[int]],
    finish: Finisher,
    *,
    remaining_s: float | None = None,
) -> FloatArray:
    """`scheduler.embed`, with inputs found in `cache` (or repeated within the request) taken
    from there: only the others are queued, and the device thread merges both, stores the new
    vectors and post-processes the whole request (an all-hit request is finished here)."""
    if cache is None:
        return await scheduler.embed(token_lists, finish, remaining_s=remaining_s)
    keys = [cache_key(ids) for ids in token_lists]
    found = cache.get_many(keys)
    missing = list(dict.fromkeys(k for k, row in zip(keys, found, strict=True) if row is None))
    cache.stats.hits += len(keys) - len(missing)  # a repeat within the request counts as a hit
    cache.stats.misses += len(missing)
    if not missing:
        return finish(np.stack(found))  # type: ignore[arg-type]
    first_row = {key: position for position, key in reversed(list(enumerate(keys)))}

    def merge(computed: FloatArray) -> FloatArray:
        cache.put_many(missing, computed)
        fresh = dict(zip(missing, computed, strict=True))
        rows = [fresh[key] if row is None else row for key, row in zip(keys, found, strict=True)]
        return finish(np.stack(rows))

    misses = [token_lists[first_row[key]] for key in missing]
    return await scheduler.embed(misses, merge, remaining_s=remaining_s)
