"""`input_type`, `prompt_name` and `normalize` over HTTP (in-process app, fake backend, real
tokenizer): the prompt is prepended exactly, errors are 400 envelopes naming the field."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import httpx
import numpy as np
import pytest

from embedserve.engine import Engine
from embedserve.models import ModelSpec
from tests.conftest import fake_runner, serve_in_process
from tests.integration.helpers import assert_error, post

PROMPTS = (("query", "query: "), ("passage", "passage: "))


@pytest.fixture
async def prompted_client(bundled_spec: ModelSpec) -> AsyncIterator[httpx.AsyncClient]:
    spec = dataclasses.replace(bundled_spec, prompts=PROMPTS, default_prompt_name="query")
    runner, _ = fake_runner(spec)
    async with serve_in_process(Engine([runner])) as client:
        yield client


def vector(response: httpx.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.array(response.json()["data"][0]["embedding"])


async def test_input_type_prepends_the_mapped_prompt(prompted_client: httpx.AsyncClient) -> None:
    by_type = await post(prompted_client, {"input": "x", "input_type": "document"})
    by_name = await post(prompted_client, {"input": "x", "prompt_name": "passage"})
    by_hand = await post(prompted_client, {"input": "passage: x", "input_type": "classification"})
    assert np.array_equal(vector(by_type), vector(by_name))
    assert np.array_equal(vector(by_type), vector(by_hand))  # exactly the prompt, prepended
    default = await post(prompted_client, {"input": "x"})
    query = await post(prompted_client, {"input": "query: x", "input_type": "clustering"})
    assert np.array_equal(vector(default), vector(query))  # null: the model's default prompt
    assert by_type.json()["usage"]["prompt_tokens"] == by_hand.json()["usage"]["prompt_tokens"]


async def test_tokenize_counts_the_prompt(prompted_client: httpx.AsyncClient) -> None:
    plain = await prompted_client.post("/tokenize", json={"input": "x", "input_type": "clustering"})
    typed = await prompted_client.post("/tokenize", json={"input": "x", "input_type": "document"})
    assert plain.json()["count"] == 3  # [CLS] x [SEP]
    assert typed.json()["count"] == 5  # [CLS] passage : x [SEP]


async def test_models_show_prompts_and_the_input_type_mapping(
    prompted_client: httpx.AsyncClient,
) -> None:
    card = (await prompted_client.get("/v1/models")).json()["data"][0]
    assert card["prompts"] == dict(PROMPTS)
    assert card["default_prompt_name"] == "query"
    assert card["input_types"]["document"] == "passage"
    assert card["input_types"]["search_query"] == "query"
    assert card["input_types"]["classification"] is None


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        ({"prompt_name": "doc"}, "prompt_name", "its prompts: passage, query"),
        ({"input_type": "query", "prompt_name": "passage"}, "prompt_name", "send one of them"),
        ({"input_type": "question"}, "input_type", "input_type"),
        ({"input_type": 1}, "input_type", "input_type"),
        ({"prompt_name": ["query"]}, "prompt_name", "prompt_name"),
        ({"normalize": "no"}, "normalize", "normalize"),
    ],
)
async def test_bad_prompt_fields_are_400(
    prompted_client: httpx.AsyncClient, body: dict[str, object], param: str, fragment: str
) -> None:
    response = await post(prompted_client, {"input": "x", **body})
    error = assert_error(response, 400, "invalid_request")
    assert error["param"] == param and fragment in error["message"]


async def test_prompt_fields_through_extra_body(prompted_client: httpx.AsyncClient) -> None:
    nested = await post(prompted_client, {"input": "x", "extra_body": {"input_type": "document"}})
    top = await post(prompted_client, {"input": "x", "input_type": "document"})
    assert np.array_equal(vector(nested), vector(top))


async def test_normalize_false_keeps_the_pooled_vector(prompted_client: httpx.AsyncClient) -> None:
    unit = vector(await post(prompted_client, {"input": "x"}))
    raw = vector(await post(prompted_client, {"input": "x", "normalize": False}))
    assert abs(np.linalg.norm(unit) - 1) < 1e-5 and abs(np.linalg.norm(raw) - 1) > 1e-3
    np.testing.assert_allclose(raw / np.linalg.norm(raw), unit, atol=1e-6)
    forced = vector(await post(prompted_client, {"input": "x", "normalize": True}))
    np.testing.assert_allclose(forced, unit, atol=1e-7)


async def test_a_huge_prompt_name_is_not_echoed_whole(prompted_client: httpx.AsyncClient) -> None:
    response = await post(prompted_client, {"input": "x", "prompt_name": "p" * 100_000})
    error = assert_error(response, 400, "invalid_request")
    assert error["param"] == "prompt_name" and len(error["message"]) < 300
