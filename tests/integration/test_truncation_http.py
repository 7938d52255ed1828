"""`truncate` over HTTP (in-process app, fake backend, the bundled tokenizer): every spelling
cuts at the asked end, the model's default applies when a request does not say."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import numpy as np
import pytest

from embedserve.backends.fake import FakeBackend
from embedserve.engine import Engine
from embedserve.models import ModelSpec
from embedserve.runner import ModelRunner
from tests.conftest import MODEL_ID, serve_in_process
from tests.integration.helpers import LONG_TEXT, assert_error, post


async def tokens_of(client: httpx.AsyncClient, text: str) -> list[int]:
    answer = await client.post("/tokenize", json={"input": text})
    ids: list[int] = answer.json()["tokens"]
    return ids


def vector(response: httpx.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.array(response.json()["data"][0]["embedding"])


async def test_end_and_start_keep_the_asked_tokens(fake_client: httpx.AsyncClient) -> None:
    ids = await tokens_of(fake_client, LONG_TEXT)
    assert len(ids) > 256
    head = [*ids[:255], ids[-1]]  # [CLS] + the first 254 + [SEP]
    tail = [ids[0], *ids[-255:]]  # [CLS] + the last 254 + [SEP]
    by_ids = {
        "head": vector(await post(fake_client, {"input": [head]})),
        "tail": vector(await post(fake_client, {"input": [tail]})),
    }
    cases = {
        "head": [
            {"truncate": "END"},
            {"truncate_prompt_tokens": -1},
            {"truncate": True},
            {"truncate": True, "truncation_direction": "right"},
            {"truncate": "END", "truncate_prompt_tokens": 256},
        ],
        "tail": [
            {"truncate": "START"},
            {"truncate": True, "truncation_direction": "left"},
            {"truncate": True, "truncation_direction": "Left"},
            {"truncate": "START", "truncate_prompt_tokens": -1},
        ],
    }
    for kept, bodies in cases.items():
        for body in bodies:
            answer = await post(fake_client, {"input": LONG_TEXT, **body})
            assert np.array_equal(vector(answer), by_ids[kept]), body
            assert answer.json()["usage"]["prompt_tokens"] == 256


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"truncate": "NONE"}, "input"),
        ({"truncate": False}, "input"),
        ({"truncate": False, "truncation_direction": "left"}, "input"),
        ({"truncate": "NONE", "truncate_prompt_tokens": -1}, "truncate"),
        ({"truncate": "MIDDLE"}, "truncate"),
        ({"truncate": 1}, "truncate"),
        ({"truncate": True, "truncation_direction": "up"}, "truncation_direction"),
    ],
)
async def test_refusals(
    fake_client: httpx.AsyncClient, body: dict[str, object], param: str
) -> None:
    answer = await post(fake_client, {"input": LONG_TEXT, **body})
    code = "context_length_exceeded" if param == "input" else "invalid_request"
    assert assert_error(answer, 400, code)["param"] == param


@pytest.fixture
async def cutting_client(bundled_spec: ModelSpec) -> AsyncIterator[httpx.AsyncClient]:
    """A model served with --truncate START."""
    backend = FakeBackend(bundled_spec)
    runner = ModelRunner(bundled_spec, (MODEL_ID,), lambda: backend, truncate="START")
    async with serve_in_process(Engine([runner])) as client:
        yield client


async def test_the_model_default_applies_when_the_request_does_not_say(
    cutting_client: httpx.AsyncClient,
) -> None:
    default = await post(cutting_client, {"input": LONG_TEXT})
    start = await post(cutting_client, {"input": LONG_TEXT, "truncate": "START"})
    end = await post(cutting_client, {"input": LONG_TEXT, "truncate": "END"})
    assert np.array_equal(vector(default), vector(start))
    assert not np.allclose(vector(default), vector(end), atol=1e-3)
    refused = await post(cutting_client, {"input": LONG_TEXT, "truncate": "NONE"})
    assert_error(refused, 400, "context_length_exceeded")


async def test_chunk_pools_the_windows(fake_client: httpx.AsyncClient) -> None:
    ids = await tokens_of(fake_client, LONG_TEXT)
    content = ids[1:-1]
    windows = [[ids[0], *content[i : i + 254], ids[-1]] for i in range(0, len(content), 254)]
    raw = (await post(fake_client, {"input": windows, "normalize": False})).json()["data"]
    rows = np.array([item["embedding"] for item in raw])
    weights = np.array([len(w) for w in windows], dtype=np.float64)
    expected = (rows * weights[:, None]).sum(axis=0) / weights.sum()
    expected /= np.linalg.norm(expected)
    answer = await post(fake_client, {"input": [LONG_TEXT, "short"], "truncate": "CHUNK"})
    assert answer.status_code == 200
    data = answer.json()["data"]
    assert len(data) == 2 and [item["index"] for item in data] == [0, 1]
    np.testing.assert_allclose(np.array(data[0]["embedding"]), expected, atol=1e-5)
    short = vector(await post(fake_client, {"input": "short"}))
    np.testing.assert_allclose(np.array(data[1]["embedding"]), short, atol=1e-6)
    assert answer.json()["usage"]["prompt_tokens"] == int(weights.sum()) + 3


async def test_chunk_of_token_ids_splits_them_as_given(fake_client: httpx.AsyncClient) -> None:
    ids = [101, *range(1000, 1600), 102]  # 602 ids: windows of 256, 256, 90
    whole = await post(fake_client, {"input": [ids], "truncate": "CHUNK"})
    assert whole.status_code == 200 and whole.json()["usage"]["prompt_tokens"] == 602
    parts = [ids[0:256], ids[256:512], ids[512:]]
    raw = (await post(fake_client, {"input": parts, "normalize": False})).json()["data"]
    rows = np.array([item["embedding"] for item in raw])
    expected = (rows * np.array([256, 256, 90])[:, None]).sum(axis=0) / 602
    np.testing.assert_allclose(vector(whole), expected / np.linalg.norm(expected), atol=1e-5)


async def test_chunk_takes_texts_longer_than_the_character_bound(
    fake_client: httpx.AsyncClient,
) -> None:
    text = "word " * 5000  # 25,000 characters: over the 16,384 of one 256-token input
    refused = await post(fake_client, {"input": text})
    assert_error(refused, 400, "context_length_exceeded")
    chunked = await post(fake_client, {"input": text, "truncate": "CHUNK"})
    assert chunked.status_code == 200 and chunked.json()["usage"]["prompt_tokens"] > 5000
    too_many = await post(fake_client, {"input": [text] * 70, "truncate": "CHUNK"})
    assert_error(too_many, 400, "max_tokens_per_request")  # 70 x 5000+ tokens > 300,000
