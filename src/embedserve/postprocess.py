"""After pooling, in this order: matryoshka truncation -> L2 normalisation (the wire encoding
follows, in `encodings`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from embedserve.arrays import FloatArray
from embedserve.models.spec import ModelSpec

_EPS = np.float32(1e-12)  # as torch.nn.functional.normalize


def l2_normalize(vectors: FloatArray) -> FloatArray:
    """Scale each row to unit length (rows of zeros stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    scaled: FloatArray = (vectors / np.maximum(norms, _EPS)).astype(np.float32, copy=False)
    return scaled


def pool_windows(vectors: FloatArray, groups: Sequence[int], weights: Sequence[int]) -> FloatArray:
    """One row per group of consecutive rows: their mean weighted by `weights` (tokens)."""
    weight = np.asarray(weights, dtype=np.float32)[:, None]
    out = np.empty((len(groups), vectors.shape[1]), dtype=np.float32)
    start = 0
    for index, size in enumerate(groups):
        part = slice(start, start + size)
        out[index] = (vectors[part] * weight[part]).sum(axis=0) / weight[part].sum()
        start += size
    return out


def finalize(
    vectors: FloatArray, *, dimensions: int | None, normalize: bool, raw: bool = False
) -> FloatArray:
    """Truncate to `dimensions` (then always normalise, as matryoshka requires), else normalise
    when the model asks for it. Truncating *before* normalising keeps the result unit length.
    `raw` (a request's `normalize: false`) skips every normalisation."""
    truncated = dimensions is not None and dimensions < vectors.shape[1]
    if truncated:
        vectors = vectors[:, :dimensions]
    if not raw and (normalize or truncated):
        vectors = l2_normalize(vectors)
    return np.ascontiguousarray(vectors, dtype=np.float32)


@dataclass(frozen=True)
class PostProcess:
    """One request's post-processing (`finalize` with these arguments); hashable, so it keys
    what depends on it (calibrated ranges)."""

    dimensions: int | None
    normalize: bool
    raw: bool = False

    @classmethod
    def of(cls, spec: ModelSpec, dimensions: int | None, normalize: bool | None) -> PostProcess:
        """What a request asking for `dimensions` and `normalize` (None: the model's) gets."""
        return cls(
            dimensions=dimensions or spec.default_dimensions,
            normalize=spec.normalize if normalize is None else normalize,
            raw=normalize is False,
        )

    def __call__(self, vectors: FloatArray) -> FloatArray:
        return finalize(vectors, dimensions=self.dimensions, normalize=self.normalize, raw=self.raw)
