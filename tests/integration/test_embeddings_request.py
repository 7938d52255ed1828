"""`POST /v1/embeddings` in-process: the shapes of a good request and its answer (OpenAI,
vLLM and OVMS forms)."""

from __future__ import annotations

import dataclasses

import httpx
import numpy as np
import pytest

from embedserve.engine import Engine
from embedserve.models import ModelSpec
from embedserve.testing import from_base64
from tests.conftest import MODEL_ALIAS, MODEL_ID, fake_runner, serve_in_process
from tests.integration.helpers import LONG_TEXT, assert_error, post


async def test_single_string_response_shape(fake_client: httpx.AsyncClient) -> None:
    response = await post(fake_client, {"model": MODEL_ID, "input": "hello world"})
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["object", "data", "model", "usage"]
    assert body["object"] == "list"
    assert body["model"] == MODEL_ID
    assert body["usage"] == {"prompt_tokens": 4, "total_tokens": 4}  # [CLS] hello world [SEP]
    (item,) = body["data"]
    assert list(item) == ["object", "index", "embedding"]
    assert item["object"] == "embedding" and item["index"] == 0
    vector = np.array(item["embedding"])
    assert vector.shape == (384,)
    assert abs(np.linalg.norm(vector) - 1) < 1e-5


async def test_list_input_keeps_order_and_indexes(fake_client: httpx.AsyncClient) -> None:
    texts = ["a much longer text than the others, with many words in it", "b", "c d"]
    batch = (await post(fake_client, {"model": MODEL_ID, "input": texts})).json()
    assert [item["index"] for item in batch["data"]] == [0, 1, 2]
    for text, item in zip(texts, batch["data"], strict=True):
        single = (await post(fake_client, {"model": MODEL_ID, "input": text})).json()
        np.testing.assert_allclose(item["embedding"], single["data"][0]["embedding"], atol=1e-6)
    assert len({tuple(item["embedding"]) for item in batch["data"]}) == 3


async def test_alias_and_omitted_model(fake_client: httpx.AsyncClient) -> None:
    by_alias = await post(fake_client, {"model": MODEL_ALIAS, "input": "x"})
    assert by_alias.json()["model"] == MODEL_ALIAS
    omitted = await post(fake_client, {"input": "x"})
    assert omitted.status_code == 200
    assert omitted.json()["model"] == MODEL_ID
    assert omitted.json()["data"] == by_alias.json()["data"]


async def test_base64_is_little_endian_float32_of_the_float_vector(
    fake_client: httpx.AsyncClient,
) -> None:
    floats = (await post(fake_client, {"input": ["x y z"], "encoding_format": "float"})).json()
    encoded = (await post(fake_client, {"input": ["x y z"], "encoding_format": "base64"})).json()
    text = encoded["data"][0]["embedding"]
    assert isinstance(text, str)
    decoded = from_base64(text)
    assert decoded.shape == (384,)
    np.testing.assert_array_equal(decoded, np.array(floats["data"][0]["embedding"], np.float32))


async def test_null_encoding_format_means_float(fake_client: httpx.AsyncClient) -> None:
    body = (await post(fake_client, {"input": "x", "encoding_format": None})).json()
    assert isinstance(body["data"][0]["embedding"], list)


async def test_token_id_inputs(fake_client: httpx.AsyncClient) -> None:
    flat = (await post(fake_client, {"input": [101, 7592, 2088, 102]})).json()
    nested = (await post(fake_client, {"input": [[101, 7592, 2088, 102], [101, 102]]})).json()
    text = (await post(fake_client, {"input": "hello world"})).json()
    assert flat["usage"]["prompt_tokens"] == 4
    assert nested["usage"]["prompt_tokens"] == 6
    assert flat["data"][0]["embedding"] == text["data"][0]["embedding"]
    assert nested["data"][0]["embedding"] == text["data"][0]["embedding"]
    assert len(nested["data"]) == 2


async def test_optional_fields_accepted_and_unknown_keys_ignored(
    fake_client: httpx.AsyncClient,
) -> None:
    plain = (await post(fake_client, {"input": "x"})).json()
    decorated = await post(
        fake_client,
        {
            "input": "x",
            "user": "user-1",
            "metadata": {"team": "search"},
            "dimensions": 384,
            "some_gateway_field": {"nested": [1, 2]},
            "priority": 3,
        },
    )
    assert decorated.status_code == 200
    assert decorated.json()["data"] == plain["data"]
    assert "additional_data" not in decorated.json()


async def test_additional_data_is_echoed(fake_client: httpx.AsyncClient) -> None:
    payload = {"trace": [1, {"a": None}], "s": "é"}
    body = (await post(fake_client, {"input": "x", "additional_data": payload})).json()
    assert body["additional_data"] == payload


async def test_extra_body_applies_and_conflicts(fake_client: httpx.AsyncClient) -> None:
    applied = await post(fake_client, {"input": "x", "extra_body": {"encoding_format": "base64"}})
    assert isinstance(applied.json()["data"][0]["embedding"], str)
    same = await post(
        fake_client, {"input": "x", "dimensions": 384, "extra_body": {"dimensions": 384}}
    )
    assert same.status_code == 200
    conflict = await post(
        fake_client, {"input": "x", "dimensions": 384, "extra_body": {"dimensions": 128}}
    )
    assert assert_error(conflict, 400, "invalid_request")["param"] == "dimensions"
    not_object = await post(fake_client, {"input": "x", "extra_body": [1]})
    assert assert_error(not_object, 400, "invalid_request")["param"] == "extra_body"


async def test_truncate_prompt_tokens(fake_client: httpx.AsyncClient) -> None:
    to_max = (await post(fake_client, {"input": LONG_TEXT, "truncate_prompt_tokens": -1})).json()
    assert to_max["usage"]["prompt_tokens"] == 256
    to_ten = (await post(fake_client, {"input": LONG_TEXT, "truncate_prompt_tokens": 10})).json()
    assert to_ten["usage"]["prompt_tokens"] == 10
    short = (await post(fake_client, {"input": "hi", "truncate_prompt_tokens": 10})).json()
    assert short["usage"]["prompt_tokens"] == 3
    ids = (
        await post(fake_client, {"input": [list(range(1000, 1300))], "truncate_prompt_tokens": 5})
    ).json()
    assert ids["usage"]["prompt_tokens"] == 5
    too_big = await post(fake_client, {"input": "x", "truncate_prompt_tokens": 257})
    assert assert_error(too_big, 400, "invalid_request")["param"] == "truncate_prompt_tokens"
    zero = await post(fake_client, {"input": "x", "truncate_prompt_tokens": 0})
    assert assert_error(zero, 400, "invalid_request")["param"] == "truncate_prompt_tokens"


async def test_matryoshka_model_truncates_then_normalises(bundled_spec: ModelSpec) -> None:
    spec = dataclasses.replace(bundled_spec, matryoshka=True)
    runner, _ = fake_runner(spec)
    async with serve_in_process(Engine([runner])) as client:
        full = np.array((await post(client, {"input": "x"})).json()["data"][0]["embedding"])
        small = np.array(
            (await post(client, {"input": "x", "dimensions": 64})).json()["data"][0]["embedding"]
        )
        too_big = await post(client, {"input": "x", "dimensions": 385})
    assert small.shape == (64,)
    assert abs(np.linalg.norm(small) - 1) < 1e-5
    np.testing.assert_allclose(small, full[:64] / np.linalg.norm(full[:64]), atol=1e-6)
    assert_error(too_big, 400, "invalid_dimensions")


@pytest.mark.parametrize(
    "path", ["/v1/embeddings", "/embeddings", "/v3/embeddings", "/v3/v1/embeddings"]
)
async def test_embedding_route_aliases(fake_client: httpx.AsyncClient, path: str) -> None:
    reference = (await post(fake_client, {"input": "alias check"})).json()
    response = await post(fake_client, {"input": "alias check"}, path)
    assert response.json() == reference
    assert_error(await post(fake_client, {"input": ""}, path), 400, "empty_input")
    with_slash = await post(fake_client, {"input": "alias check"}, path + "/")
    assert with_slash.status_code == 200 and with_slash.json() == reference
