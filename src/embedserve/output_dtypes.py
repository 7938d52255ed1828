"""Compact vectors (Voyage's `output_dtype` names and semantics): what a request's vectors
become after post-processing, and their little-endian bytes for base64."""

from __future__ import annotations

import typing
from typing import Any, Literal

import numpy as np

from embedserve.arrays import FloatArray
from embedserve.errors import InvalidRequest, quoted

OutputDtype = Literal["float32", "float16", "bfloat16", "int8", "uint8", "binary", "ubinary"]
OUTPUT_DTYPES: tuple[str, ...] = typing.get_args(OutputDtype)
FLOAT_DTYPES = ("float32", "float16", "bfloat16")  # vLLM's `embed_dtype` takes these
CALIBRATED = ("int8", "uint8")  # need the model's per-dimension ranges (`calibration`)


def check_output_dtype(dtype: str | None) -> str:
    """The dtype to return (`float32` when none is asked), refused early when unknown."""
    chosen = dtype or "float32"
    if chosen not in OUTPUT_DTYPES:
        raise InvalidRequest(
            f"`output_dtype` must be one of {', '.join(OUTPUT_DTYPES)}, got {quoted(chosen)}",
            param="output_dtype",
        )
    return chosen


def quantize(vectors: FloatArray, ranges: FloatArray, dtype: str) -> Any:
    """int8/uint8 scalar quantisation over per-dimension `ranges` ((2, dim): minima, maxima), as
    sentence-transformers' `quantize_embeddings` computes it: 256 equal buckets per dimension,
    values outside the range clipped to the end buckets; int8 is uint8 offset by -128."""
    starts = ranges[0].astype(np.float32, copy=False)
    steps = (ranges[1].astype(np.float32, copy=False) - starts) / 255
    steps = np.where(steps == 0, np.float32(1), steps)
    buckets = np.clip(np.floor((vectors - starts) / steps), 0, 255)
    if dtype == "uint8":
        return buckets.astype(np.uint8)
    return (buckets - 128).astype(np.int8)


def bfloat16_rounded(vectors: FloatArray) -> FloatArray:
    """float32 values rounded to the nearest bfloat16 (ties to even), kept as float32."""
    bits = np.ascontiguousarray(vectors, dtype=np.float32).view(np.uint32)
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) & np.uint32(
        0xFFFF0000
    )
    result: FloatArray = rounded.view(np.float32)
    return result


def convert(vectors: FloatArray, dtype: str, ranges: FloatArray | None = None) -> Any:
    """(n, dim) float32 -> the array the client asked for: float16, bfloat16 values (as
    float32), int8/uint8 buckets over `ranges` (see `quantize`), or sign bits packed 8 per byte
    (`binary`: int8 offset by -128, `ubinary`: uint8)."""
    if dtype == "float32":
        return vectors
    if dtype in CALIBRATED:
        if ranges is None:
            raise ValueError(f"{dtype} needs the model's calibrated ranges")
        return quantize(vectors, ranges, dtype)
    if dtype == "float16":
        return vectors.astype(np.float16)
    if dtype == "bfloat16":
        return bfloat16_rounded(vectors)
    packed = np.packbits(vectors > 0, axis=-1)
    if dtype == "ubinary":
        return packed
    if dtype == "binary":
        return (packed.astype(np.int16) - 128).astype(np.int8)
    raise InvalidRequest(f"`output_dtype` {quoted(dtype)} is not served", param="output_dtype")


def wire_bytes(row: Any, dtype: str) -> bytes:
    """The little-endian bytes of one converted row (what base64 carries)."""
    if dtype == "bfloat16":
        upper = np.asarray(row, dtype=np.float32).view(np.uint32) >> np.uint32(16)
        return upper.astype("<u2").tobytes()
    if dtype == "float16":
        return np.asarray(row).astype("<f2", copy=False).tobytes()
    if dtype in ("binary", "ubinary", "int8", "uint8"):
        return np.asarray(row).tobytes()
    return np.asarray(row).astype("<f4", copy=False).tobytes()
