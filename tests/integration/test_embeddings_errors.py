"""`POST /v1/embeddings` in-process: every refusal, in the OpenAI envelope with its code."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from embedserve.engine import Engine
from embedserve.models import ModelSpec
from embedserve.settings import BatchingLimits, ServerSettings
from tests.conftest import MODEL_ALIAS, MODEL_ID, fake_runner, serve_in_process
from tests.integration.helpers import EMBED, LONG_TEXT, assert_error, post


@pytest.mark.parametrize("raw", [b"{not json", b"", b"\xff\xfe", b'{"input": "x",}'])
async def test_body_not_json(fake_client: httpx.AsyncClient, raw: bytes) -> None:
    response = await fake_client.post(
        EMBED, content=raw, headers={"content-type": "application/json"}
    )
    assert_error(response, 400, "invalid_request")


@pytest.mark.parametrize("body", [[1, 2], "text", 3, None])
async def test_body_not_an_object(fake_client: httpx.AsyncClient, body: Any) -> None:
    assert_error(await post(fake_client, body), 400, "invalid_request")


async def test_wrong_content_type(fake_client: httpx.AsyncClient) -> None:
    response = await fake_client.post(
        EMBED, content=b'{"input": "x"}', headers={"content-type": "text/plain"}
    )
    assert "Content-Type" in assert_error(response, 400, "invalid_request")["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": MODEL_ID}, "input"),
        ({"input": 5}, "input"),
        ({"input": [1.5]}, "input"),
        ({"input": ["a", 1]}, "input"),
        ({"input": [[1], "a"]}, "input"),
        ({"input": [["a"]]}, "input"),
        ({"input": [True]}, "input"),
        ({"input": {"text": "a"}}, "input"),
        ({"input": "x", "model": 5}, "model"),
        ({"input": "x", "encoding_format": "hex"}, "encoding_format"),
        ({"input": "x", "dimensions": "128"}, "dimensions"),
        ({"input": "x", "dimensions": 1.5}, "dimensions"),
        ({"input": "x", "user": 5}, "user"),
        ({"input": "x", "metadata": {"a": 1}}, "metadata"),
        ({"input": "x", "metadata": "a"}, "metadata"),
        ({"input": "x", "truncate_prompt_tokens": "all"}, "truncate_prompt_tokens"),
    ],
)
async def test_wrong_field_types(
    fake_client: httpx.AsyncClient, body: dict[str, Any], param: str
) -> None:
    error = assert_error(await post(fake_client, body), 400, "invalid_request")
    assert error["param"] == param
    assert param in error["message"]


@pytest.mark.parametrize("value", ["", [], [""], ["a", ""], [[]], [[101], []]])
async def test_empty_input(fake_client: httpx.AsyncClient, value: Any) -> None:
    assert_error(await post(fake_client, {"input": value}), 400, "empty_input")


async def test_context_length_exceeded_names_index_length_and_max(
    fake_client: httpx.AsyncClient,
) -> None:
    error = assert_error(
        await post(fake_client, {"input": ["short", LONG_TEXT]}), 400, "context_length_exceeded"
    )
    assert error["param"] == "input"
    assert "input[1]" in error["message"] and "256" in error["message"]
    assert "maximum context length" in error["message"]  # vLLM's wording, which tests match
    ids = await post(fake_client, {"input": [list(range(1000, 1257))]})
    assert "257" in assert_error(ids, 400, "context_length_exceeded")["message"]
    exactly_max = await post(fake_client, {"input": [list(range(1000, 1256))]})
    assert exactly_max.status_code == 200


@pytest.mark.parametrize(
    "ids", [[[30522]], [[-1]], [101, 99999], [[2**40]], [[2**63 - 1]], [[2**64 - 1]]]
)
async def test_invalid_token_id(fake_client: httpx.AsyncClient, ids: Any) -> None:
    assert_error(await post(fake_client, {"input": ids}), 400, "invalid_token_id")


@pytest.mark.parametrize("dimensions", [128, 0, -1, 385])
async def test_invalid_dimensions(fake_client: httpx.AsyncClient, dimensions: int) -> None:
    error = assert_error(
        await post(fake_client, {"input": "x", "dimensions": dimensions}), 400, "invalid_dimensions"
    )
    assert error["param"] == "dimensions"


@pytest.fixture
async def limited_client(bundled_spec: ModelSpec) -> AsyncIterator[httpx.AsyncClient]:
    limits = BatchingLimits(max_client_batch_size=4, max_request_tokens=20)
    runner, _ = fake_runner(bundled_spec, limits=limits)
    async with serve_in_process(Engine([runner])) as client:
        yield client


async def test_too_many_inputs(limited_client: httpx.AsyncClient) -> None:
    assert (await post(limited_client, {"input": ["a"] * 4})).status_code == 200
    error = assert_error(await post(limited_client, {"input": ["a"] * 5}), 400, "too_many_inputs")
    assert "4" in error["message"]


async def test_too_many_tokens_per_request(limited_client: httpx.AsyncClient) -> None:
    assert (await post(limited_client, {"input": ["a b c"] * 4})).status_code == 200  # 4 x 5
    error = assert_error(
        await post(limited_client, {"input": ["a b c d"] * 4}), 400, "max_tokens_per_request"
    )
    assert "24" in error["message"] and "20" in error["message"]


async def test_default_client_batch_limit_is_2048(fake_client: httpx.AsyncClient) -> None:
    assert (await post(fake_client, {"input": ["a"] * 2048})).status_code == 200
    assert_error(await post(fake_client, {"input": ["a"] * 2049}), 400, "too_many_inputs")


async def test_unknown_model(fake_client: httpx.AsyncClient) -> None:
    error = assert_error(
        await post(fake_client, {"model": "gpt-9", "input": "x"}),
        404,
        "model_not_found",
        type_="not_found_error",
    )
    assert MODEL_ID in error["message"] and MODEL_ALIAS in error["message"]
    assert error["param"] == "model"


async def test_unknown_route_and_wrong_method(fake_client: httpx.AsyncClient) -> None:
    assert_error(await fake_client.get("/v1/nothing"), 404, "not_found")
    assert_error(await fake_client.post("/v1/chat/completions", json={}), 404, "not_found")
    assert_error(await fake_client.get(EMBED), 405, "method_not_allowed")
    assert_error(await fake_client.delete("/v1/models"), 405, "method_not_allowed")


@pytest.fixture
async def small_payload_client(bundled_spec: ModelSpec) -> AsyncIterator[httpx.AsyncClient]:
    runner, _ = fake_runner(bundled_spec)
    async with serve_in_process(Engine([runner]), ServerSettings(max_payload_bytes=1000)) as client:
        yield client


async def test_payload_too_large(small_payload_client: httpx.AsyncClient) -> None:
    big = {"input": ["word " * 50] * 10}
    assert_error(await post(small_payload_client, big), 413, "payload_too_large")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        yield b'{"input": ["'
        for _ in range(100):
            yield b"word word word "
        yield b'"]}'

    chunked = await small_payload_client.post(
        EMBED, content=chunks(), headers={"content-type": "application/json"}
    )
    assert_error(chunked, 413, "payload_too_large")
    assert (await post(small_payload_client, {"input": "fits"})).status_code == 200


async def test_overload_answers_429_at_once_and_recovers(bundled_spec: ModelSpec) -> None:
    limits = BatchingLimits(max_queue_tokens=30)
    runner, _ = fake_runner(bundled_spec, limits=limits, delay_s=0.2)
    async with serve_in_process(Engine([runner])) as client:
        bodies = [{"input": [f"text number {i}"] * 2} for i in range(12)]  # 12 tokens each
        responses = await asyncio.gather(*(post(client, body) for body in bodies))
        statuses = [r.status_code for r in responses]
        assert set(statuses) == {200, 429}, statuses
        rejected = next(r for r in responses if r.status_code == 429)
        assert_error(rejected, 429, "server_overloaded", type_="rate_limit_error")
        assert int(rejected.headers["retry-after"]) >= 1
        after = await post(client, {"input": "calm again"})
        assert after.status_code == 200
        metrics = (await client.get("/metrics")).text
    assert "embedserve_rejected_requests_total" in metrics


async def test_failing_batch_is_500_with_request_id_and_server_keeps_serving(
    bundled_spec: ModelSpec,
) -> None:
    poison = 7592  # "hello"
    runner, backend = fake_runner(bundled_spec, fail_token_id=poison)
    async with serve_in_process(Engine([runner])) as client:
        failed = await client.post(
            EMBED, json={"input": "hello"}, headers={"x-request-id": "req-42"}
        )
        error = assert_error(failed, 500, "internal_error", type_="server_error")
        assert "req-42" in error["message"]
        assert "fake backend failure" not in error["message"]  # no internals leak
        assert failed.headers["x-request-id"] == "req-42"
        fine = await post(client, {"input": "goodbye"})
        assert fine.status_code == 200
    assert backend.batches >= 2
