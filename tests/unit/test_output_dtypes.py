"""output_dtype: each conversion against numpy (and sentence-transformers' quantization for the
packed forms), and the bytes base64 carries."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from sentence_transformers.util import quantize_embeddings

from embedserve.encodings import encode_rows
from embedserve.errors import InvalidRequest
from embedserve.output_dtypes import bfloat16_rounded, check_output_dtype, convert, wire_bytes

RNG = np.random.default_rng(7)
VECTORS = RNG.standard_normal((5, 384)).astype(np.float32)


def test_float_types() -> None:
    assert convert(VECTORS, "float32") is VECTORS
    half = convert(VECTORS, "float16")
    assert half.dtype == np.float16 and np.array_equal(half, VECTORS.astype(np.float16))
    brain = convert(VECTORS, "bfloat16")
    assert brain.dtype == np.float32
    assert np.all(brain.view(np.uint32) & 0xFFFF == 0)  # exactly representable in bfloat16
    assert np.max(np.abs(brain - VECTORS) / np.abs(VECTORS)) <= 2**-8  # half an ulp of 8 bits


def test_bfloat16_rounds_to_nearest_even() -> None:
    values = np.array([1.0, 1.0 + 2**-8, 1.0 + 3 * 2**-8, 1.0 + 2**-9, -2.5], dtype=np.float32)
    expected = np.array([1.0, 1.0, 1.0 + 4 * 2**-8, 1.0, -2.5], dtype=np.float32)
    assert np.array_equal(bfloat16_rounded(values), expected)


@pytest.mark.parametrize("dtype", ["binary", "ubinary"])
def test_packed_bits_match_sentence_transformers(dtype: str) -> None:
    packed = convert(VECTORS, dtype)
    assert packed.shape == (5, 48)
    assert packed.dtype == (np.int8 if dtype == "binary" else np.uint8)
    assert np.array_equal(packed, quantize_embeddings(VECTORS, precision=dtype))


@pytest.mark.parametrize(
    ("dtype", "numpy_type", "size"),
    [
        ("float32", "<f4", 1536),
        ("float16", "<f2", 768),
        ("binary", "i1", 48),
        ("ubinary", "u1", 48),
    ],
)
def test_base64_carries_the_little_endian_bytes(dtype: str, numpy_type: str, size: int) -> None:
    rows = convert(VECTORS, dtype)
    (text, *_) = encode_rows(rows, "base64", dtype)
    raw = base64.b64decode(text)
    assert len(raw) == size
    assert np.array_equal(np.frombuffer(raw, dtype=numpy_type), np.asarray(rows[0]))


def test_bfloat16_base64_is_the_upper_half_of_float32() -> None:
    rows = convert(VECTORS, "bfloat16")
    raw = wire_bytes(rows[0], "bfloat16")
    assert len(raw) == 768
    restored = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    assert np.array_equal(restored, rows[0])


def test_checks() -> None:
    assert check_output_dtype(None) == "float32"
    assert check_output_dtype("ubinary") == "ubinary"
    assert check_output_dtype("int8") == "int8"
    with pytest.raises(InvalidRequest, match="must be one of"):
        check_output_dtype("float64")


def calibration_ranges() -> np.ndarray:
    """Ranges from other vectors, one dimension of zero width, a few values of VECTORS outside."""
    sample = RNG.standard_normal((200, 384)).astype(np.float32)
    sample[:, 3] = 0.25
    return np.vstack((sample.min(axis=0), sample.max(axis=0)))


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_int8_matches_sentence_transformers_with_the_same_ranges(dtype: str) -> None:
    ranges = calibration_ranges()
    vectors = VECTORS * 1.5  # some values fall outside the ranges: clipped, never wrapped
    assert (vectors < ranges[0]).any() and (vectors > ranges[1]).any()
    quantized = convert(vectors, dtype, ranges)
    assert quantized.dtype == np.dtype(dtype) and quantized.shape == vectors.shape
    assert np.array_equal(quantized, quantize_embeddings(vectors, precision=dtype, ranges=ranges))
    low = 0 if dtype == "uint8" else -128
    assert quantized.min() == low and quantized.max() == low + 255


def test_int8_is_uint8_offset_and_needs_ranges() -> None:
    ranges = calibration_ranges()
    unsigned = convert(VECTORS, "uint8", ranges).astype(np.int16)
    assert np.array_equal(convert(VECTORS, "int8", ranges), (unsigned - 128).astype(np.int8))
    with pytest.raises(ValueError, match="calibrated ranges"):
        convert(VECTORS, "int8")


@pytest.mark.parametrize(("dtype", "numpy_type"), [("int8", "i1"), ("uint8", "u1")])
def test_int8_base64_is_one_byte_per_dimension(dtype: str, numpy_type: str) -> None:
    rows = convert(VECTORS, dtype, calibration_ranges())
    raw = base64.b64decode(encode_rows(rows, "base64", dtype)[0])
    assert len(raw) == 384
    assert np.array_equal(np.frombuffer(raw, dtype=numpy_type), rows[0])
