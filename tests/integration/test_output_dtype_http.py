"""`output_dtype` over HTTP (in-process app, fake backend): JSON numbers and base64 bytes of
each type, equal to converting the float32 answer; vLLM's `embed_dtype`; refusals."""

from __future__ import annotations

import base64

import httpx
import numpy as np
import pytest

from embedserve.calibration import builtin_sample
from embedserve.output_dtypes import convert
from tests.integration.helpers import assert_error, post

TEXTS = ["first text", "a second, longer text"]
TYPES = {"float16": "<f2", "binary": "i1", "ubinary": "u1", "int8": "i1", "uint8": "u1"}


async def float32_of(client: httpx.AsyncClient) -> np.ndarray:
    data = (await post(client, {"input": TEXTS, "encoding_format": "float"})).json()["data"]
    return np.array([item["embedding"] for item in data], dtype=np.float32)


async def sample_ranges(client: httpx.AsyncClient, **body: object) -> np.ndarray:
    """The ranges the server calibrates: its own vectors of the built-in sample."""
    sample = builtin_sample()
    parts = []
    for start in range(0, len(sample), 64):
        texts = sample[start : start + 64]
        data = (await post(client, {"input": texts, "truncate": "END", **body})).json()["data"]
        parts.append([item["embedding"] for item in data])
    vectors = np.concatenate(parts).astype(np.float32)
    return np.vstack((vectors.min(axis=0), vectors.max(axis=0)))


async def expected_of(client: httpx.AsyncClient, dtype: str) -> np.ndarray:
    ranges = await sample_ranges(client) if dtype in ("int8", "uint8") else None
    return np.asarray(convert(await float32_of(client), dtype, ranges))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "binary", "ubinary", "int8", "uint8"])
async def test_json_numbers_are_the_converted_vector(
    fake_client: httpx.AsyncClient, dtype: str
) -> None:
    expected = await expected_of(fake_client, dtype)
    answer = await post(fake_client, {"input": TEXTS, "output_dtype": dtype})
    rows = np.array([item["embedding"] for item in answer.json()["data"]])
    assert rows.shape == expected.shape
    assert np.array_equal(rows.astype(expected.dtype), expected)  # JSON: the shortest repr
    if dtype not in ("float16", "bfloat16"):
        assert all(isinstance(v, int) for v in answer.json()["data"][0]["embedding"])


@pytest.mark.parametrize("dtype", list(TYPES))
async def test_base64_is_the_little_endian_bytes(
    fake_client: httpx.AsyncClient, dtype: str
) -> None:
    expected = await expected_of(fake_client, dtype)
    body = {"input": TEXTS, "output_dtype": dtype, "encoding_format": "base64"}
    data = (await post(fake_client, body)).json()["data"]
    for row, item in zip(expected, data, strict=True):
        decoded = np.frombuffer(base64.b64decode(item["embedding"]), dtype=TYPES[dtype])
        assert np.array_equal(decoded, row)


async def test_bfloat16_base64_and_vllm_name(fake_client: httpx.AsyncClient) -> None:
    expected = convert(await float32_of(fake_client), "bfloat16")
    body = {"input": TEXTS, "embed_dtype": "bfloat16", "encoding_format": "base64"}
    data = (await post(fake_client, body)).json()["data"]
    raw = np.frombuffer(base64.b64decode(data[0]["embedding"]), dtype="<u2")
    assert np.array_equal((raw.astype(np.uint32) << 16).view(np.float32), expected[0])


@pytest.mark.parametrize(
    "body",
    [
        {"output_dtype": "float64"},
        {"embed_dtype": "int8"},
        {"embed_dtype": "binary"},
        {"output_dtype": "float16", "embed_dtype": "bfloat16"},
    ],
)
async def test_refusals(fake_client: httpx.AsyncClient, body: dict[str, str]) -> None:
    error = assert_error(await post(fake_client, {"input": "x", **body}), 400, "invalid_request")
    assert error["param"] in ("output_dtype", "embed_dtype")


async def test_dimensions_apply_first(fake_client: httpx.AsyncClient) -> None:
    answer = await post(fake_client, {"input": "x", "output_dtype": "ubinary", "dimensions": 384})
    assert len(answer.json()["data"][0]["embedding"]) == 48


async def test_int8_ranges_follow_normalize(fake_client: httpx.AsyncClient) -> None:
    """Each post-processing gets the ranges of the sample post-processed the same way (the
    unit tests cover `dimensions`)."""
    for extra in ({"normalize": False}, {"normalize": True}):
        ranges = await sample_ranges(fake_client, **extra)
        floats = (await post(fake_client, {"input": TEXTS, **extra})).json()["data"]
        expected = convert(np.array([i["embedding"] for i in floats], np.float32), "uint8", ranges)
        body = {"input": TEXTS, "output_dtype": "uint8", **extra}
        data = (await post(fake_client, body)).json()["data"]
        assert np.array_equal(np.array([item["embedding"] for item in data]), expected)
