"""int8/uint8 on the real model through the openai SDK: the server's calibrated buckets equal
sentence-transformers' `quantize_embeddings` over ranges calibrated the same way, and the
calibration is cached beside the exports."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
from sentence_transformers.util import quantize_embeddings

from embedserve.calibration import builtin_sample
from tests.e2e.shared import DIMENSION, MODEL_ID, TEXTS, Reference

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reference_ranges(reference: Reference) -> np.ndarray:
    """sentence-transformers' vectors of the built-in sample, as the server calibrates on."""
    vectors = reference.vectors(builtin_sample())
    return np.vstack((vectors.min(axis=0), vectors.max(axis=0)))


def assert_close_buckets(got: np.ndarray, expected: np.ndarray) -> None:
    """Equal, but for the rare value that ONNX and torch put either side of a bucket edge."""
    assert got.shape == expected.shape and got.dtype == expected.dtype
    off = np.abs(got.astype(np.int16) - expected.astype(np.int16))
    assert off.max() <= 1
    assert np.mean(off == 0) >= 0.99


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_openai_int8_equals_sentence_transformers_quantization(
    client: openai.OpenAI, reference: Reference, reference_ranges: np.ndarray, dtype: str
) -> None:
    response = client.embeddings.create(
        model=MODEL_ID, input=TEXTS, encoding_format="float", extra_body={"output_dtype": dtype}
    )
    got = np.array([item.embedding for item in response.data], dtype=dtype)
    expected = quantize_embeddings(
        reference.vectors(TEXTS), precision=dtype, ranges=reference_ranges
    )
    assert got.shape == (len(TEXTS), DIMENSION)
    assert_close_buckets(got, np.asarray(expected))
    low = 0 if dtype == "uint8" else -128
    assert got.min() >= low and got.max() <= low + 255 and len(np.unique(got)) > 50


def test_int8_base64_bytes_and_the_calibration_cache(
    http: httpx.Client, onnx_cache_dir: Path
) -> None:
    body = {"model": MODEL_ID, "input": TEXTS, "output_dtype": "int8"}
    numbers = http.post("/v1/embeddings", json=body).json()["data"]
    packed = http.post("/v1/embeddings", json={**body, "encoding_format": "base64"}).json()
    for item, number in zip(packed["data"], numbers, strict=True):
        raw = base64.b64decode(item["embedding"])
        assert len(raw) == DIMENSION
        assert np.array_equal(np.frombuffer(raw, dtype=np.int8), number["embedding"])
    cached = list((onnx_cache_dir / "calibration").glob("*/vectors.npy"))
    assert any(np.load(path).shape == (len(builtin_sample()), DIMENSION) for path in cached)
