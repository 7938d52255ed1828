"""`Embedder`: the engine behind a synchronous, sentence-transformers-like `.encode()`."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import numpy as np

from embedserve.arrays import FloatArray
from embedserve.engine import Engine, ModelSource
from embedserve.ranking import PairOptions, pair_scores

T = TypeVar("T")
DEFAULT_CHUNK = 256  # texts per engine request; two are in flight to overlap tokenizing


class Embedder:
    """A model loaded in this process. `Embedder()` is the bundled all-MiniLM-L6-v2;
    `Embedder("path/to/model", backend="torch", max_batch_tokens=8192)` any other, with any
    `ModelSettings` or `BatchingLimits` field as a keyword.

    >>> vectors = Embedder().encode(["a", "b"])   # (2, 384) float32, unit length
    """

    def __init__(
        self, model: ModelSource = None, *, cache_dir: Path | None = None, **settings: Any
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="embedserve-embedder", daemon=True
        )
        self._thread.start()
        self.engine = Engine.from_models(model, cache_dir=cache_dir, **settings)
        try:
            self.run(self.engine.start())
        except BaseException:
            self.close()
            raise
        self._runner = self.engine.runners[0]

    @property
    def dimensions(self) -> int:
        """The size of a vector when `encode` is given no `dimensions`."""
        return self._runner.spec.output_dimensions

    @property
    def max_length(self) -> int:
        """Tokens per input the model reads; longer inputs are cut (or refused)."""
        return self._runner.spec.max_length

    def encode(
        self,
        texts: str | Sequence[str],
        batch_size: int | None = None,
        *,
        dimensions: int | None = None,
        truncate: bool = True,
        prompt_name: str | None = None,
        input_type: str | None = None,
        normalize: bool | None = None,
        output_dtype: str | None = None,
    ) -> FloatArray:
        """Vectors of `texts` as a float32 array: (n, dim) for a list, (dim,) for one string.
        Post-processed as the server does (normalisation, `dimensions`); inputs longer than
        the model's max length are cut to it (as sentence-transformers does) unless
        `truncate=False`, which refuses them. `batch_size` is the texts per engine request
        (the scheduler forms the forward batches by tokens). `prompt_name` / `input_type`
        choose the prompt (default: the model's), `normalize=False` skips normalisation,
        `output_dtype` gives float16, bfloat16 (as float32 values) or packed bits."""
        single = isinstance(texts, str)
        items = [texts] if isinstance(texts, str) else list(texts)
        if not items:
            return np.empty((0, dimensions or self.dimensions), dtype=np.float32)
        chunk = batch_size or self._chunk_size()
        parts = [items[start : start + chunk] for start in range(0, len(items), chunk)]
        request = {
            "dimensions": dimensions,
            "truncate_prompt_tokens": -1 if truncate else None,
            "prompt_name": prompt_name,
            "input_type": input_type,
            "normalize": normalize,
            "output_dtype": output_dtype,
        }
        vectors = self.run(self._encode_parts(parts, request))
        return vectors[0] if single else vectors

    def predict(
        self,
        pairs: Sequence[tuple[str, str]],
        batch_size: int = DEFAULT_CHUNK,
        *,
        raw: bool = False,
    ) -> FloatArray:
        """Relevance scores of (query, document) pairs, as `CrossEncoder.predict` gives them:
        a reranker's (its logits with `raw`), or an embedding model's cosines. Over-long
        documents are cut, never the query."""
        if not pairs:
            return np.empty((0,), dtype=np.float32)
        parts = [
            list(pairs[start : start + batch_size]) for start in range(0, len(pairs), batch_size)
        ]
        scores: list[float] = []
        for part in parts:
            left, right = [q for q, _ in part], [d for _, d in part]
            indexes = [(i, i) for i in range(len(part))]
            options = PairOptions(raw=raw)
            result = self.run(pair_scores(self.engine, None, left, right, indexes, options=options))
            scores.extend(result.scores)
        return np.asarray(scores, dtype=np.float32)

    def _chunk_size(self) -> int:
        limits = self._runner.limits
        fit = limits.max_request_tokens // self.max_length
        return max(1, min(DEFAULT_CHUNK, limits.max_client_batch_size, fit))

    async def _encode_parts(self, parts: list[list[str]], request: dict[str, Any]) -> FloatArray:
        in_flight = asyncio.Semaphore(2)

        async def one(part: list[str]) -> FloatArray:
            async with in_flight:
                result = await self.engine.embed(part, **request)
                vectors: FloatArray = result.vectors
                return vectors

        results = await asyncio.gather(*(one(part) for part in parts))
        joined: FloatArray = np.concatenate(results, axis=0)
        return joined

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine over `self.engine` on the embedder's event loop; its result."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(work, self._loop)
        return future.result()

    def close(self) -> None:
        """Release the model and the background event loop."""
        if self._loop.is_closed():
            return
        if getattr(self, "engine", None) is not None and self.engine.loaded:
            self.run(self.engine.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> Embedder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
