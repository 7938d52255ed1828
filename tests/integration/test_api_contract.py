"""The HTTP contract of shared/API.md, row by row, against the in-process app (fake backend,
real tokenizer of the bundled model)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx
import numpy as np
import pytest

from embedserve.engine import Engine
from embedserve.models import ModelSpec
from embedserve.settings import BatchingLimits, ServerSettings
from embedserve.testing import from_base64
from tests.conftest import MODEL_ALIAS, MODEL_ID, fake_runner, serve_in_process

EMBED = "/v1/embeddings"
LONG_TEXT = " ".join(f"word{i}" for i in range(400))  # far more than 256 tokens


def assert_error(
    response: httpx.Response, status: int, code: str, *, type_: str = "invalid_request_error"
) -> dict[str, Any]:
    """The OpenAI envelope with exactly these keys, status, type and code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == type_
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    return dict(error)


async def post(client: httpx.AsyncClient, body: Any, path: str = EMBED) -> httpx.Response:
    return await client.post(path, json=body)


# --- successful shapes -------------------------------------------------------------------------


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


# --- 400 rows ----------------------------------------------------------------------------------


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


# --- 401, 404, 405, 413 ------------------------------------------------------------------------


@pytest.fixture
async def keyed_client(bundled_spec: ModelSpec) -> AsyncIterator[httpx.AsyncClient]:
    runner, _ = fake_runner(bundled_spec)
    settings = ServerSettings(api_keys=("key-one", "key-two"))
    async with serve_in_process(Engine([runner]), settings) as client:
        yield client


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer wrong"},
        {"authorization": "key-one"},
        {"authorization": "Basic key-one"},
    ],
)
async def test_missing_or_wrong_api_key(
    keyed_client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    for method, path in [
        ("POST", EMBED),
        ("GET", "/v1/models"),
        ("GET", "/nope"),
        ("GET", "/docs"),
    ]:
        response = await keyed_client.request(method, path, json={"input": "x"}, headers=headers)
        assert_error(response, 401, "invalid_api_key", type_="authentication_error")


async def test_valid_api_keys_and_open_probes(keyed_client: httpx.AsyncClient) -> None:
    for key in ("key-one", "key-two"):
        ok = await keyed_client.post(
            EMBED, json={"input": "x"}, headers={"authorization": f"Bearer {key}"}
        )
        assert ok.status_code == 200
    for path in [
        "/health",
        "/metrics",
        "/v2/health/live",
        "/v2/health/ready",
        f"/v2/models/{MODEL_ID}/ready",
    ]:
        assert (await keyed_client.get(path)).status_code == 200, path


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


# --- 429, 500, 503 -----------------------------------------------------------------------------


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


async def test_not_ready_before_start(bundled_spec: ModelSpec) -> None:
    from embedserve.api import create_app

    runner, _ = fake_runner(bundled_spec)
    engine = Engine([runner])  # never started
    app = create_app(engine, manage_engine=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert_error(await client.get("/health"), 503, "not_ready", type_="server_error")
        assert_error(await client.get("/v2/health/ready"), 503, "not_ready", type_="server_error")
        assert_error(
            await client.get(f"/v2/models/{MODEL_ID}/ready"), 503, "not_ready", type_="server_error"
        )
        assert_error(await post(client, {"input": "x"}), 503, "not_ready", type_="server_error")
        assert (await client.get("/v2/health/live")).status_code == 200


# --- models, health, tokenize, docs, metrics, request ids ---------------------------------------


async def test_models_routes(fake_client: httpx.AsyncClient) -> None:
    listing = (await fake_client.get("/v1/models")).json()
    assert listing["object"] == "list"
    ids = [card["id"] for card in listing["data"]]
    assert ids == [MODEL_ID, MODEL_ALIAS]
    card = listing["data"][0]
    for key in ("id", "object", "created", "owned_by", "max_model_len", "dimensions"):
        assert key in card
    assert card["object"] == "model" and card["dimensions"] == 384 and card["max_model_len"] == 256
    assert (await fake_client.get("/v3/models")).json() == listing
    assert (await fake_client.get("/models")).json() == listing  # Infinity's path
    for path in [f"/v1/models/{MODEL_ID}", "/v1/models/sentence-transformers%2Fall-MiniLM-L6-v2"]:
        one = await fake_client.get(path)
        assert one.status_code == 200 and one.json()["id"] == MODEL_ID
    alias = (await fake_client.get(f"/v1/models/{MODEL_ALIAS}")).json()
    assert alias["id"] == MODEL_ALIAS and alias["root"] == MODEL_ID
    assert_error(
        await fake_client.get("/v1/models/nope/nope"),
        404,
        "model_not_found",
        type_="not_found_error",
    )


async def test_health_routes(fake_client: httpx.AsyncClient) -> None:
    assert (await fake_client.get("/health")).json() == {"status": "ok"}
    assert (await fake_client.get("/v2/health/live")).status_code == 200
    assert (await fake_client.get("/v2/health/ready")).status_code == 200
    for name in [MODEL_ID, "sentence-transformers%2Fall-MiniLM-L6-v2", MODEL_ALIAS]:
        assert (await fake_client.get(f"/v2/models/{name}/ready")).status_code == 200
    assert_error(
        await fake_client.get("/v2/models/unknown/ready"),
        404,
        "model_not_found",
        type_="not_found_error",
    )


async def test_tokenize(fake_client: httpx.AsyncClient) -> None:
    one = (await post(fake_client, {"model": MODEL_ID, "input": "hello world"}, "/tokenize")).json()
    assert one["tokens"] == [101, 7592, 2088, 102]
    assert one["count"] == 4 and one["max_model_len"] == 256
    many = (await post(fake_client, {"prompt": ["hello", "hello world"]}, "/tokenize")).json()
    assert [item["count"] for item in many["data"]] == [3, 4]
    assert many["tokens"] == [[101, 7592, 102], [101, 7592, 2088, 102]]
    bare = (
        await post(fake_client, {"input": "hello", "add_special_tokens": False}, "/tokenize")
    ).json()
    assert bare["tokens"] == [7592]
    prompt = (await post(fake_client, {"input": None, "prompt": "hello"}, "/tokenize")).json()
    assert prompt["tokens"] == [101, 7592, 102]  # one string in, a flat list out
    assert_error(
        await post(fake_client, {"model": "x", "input": "a"}, "/tokenize"),
        404,
        "model_not_found",
        type_="not_found_error",
    )
    assert_error(await post(fake_client, {"input": [""]}, "/tokenize"), 400, "empty_input")
    assert_error(await post(fake_client, {"input": []}, "/tokenize"), 400, "empty_input")
    assert_error(await post(fake_client, {}, "/tokenize"), 400, "invalid_request")


async def test_openapi_and_docs(fake_client: httpx.AsyncClient) -> None:
    schema = (await fake_client.get("/openapi.json")).json()
    assert "/v1/embeddings" in schema["paths"]
    body = schema["paths"]["/v1/embeddings"]["post"]["requestBody"]["content"]["application/json"]
    assert "input" in body["schema"]["properties"]
    docs = await fake_client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of a Prometheus text page (0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


async def test_metrics_count_requests(fake_client: httpx.AsyncClient) -> None:
    before = (await fake_client.get("/metrics")).text
    await post(fake_client, {"input": "x"})  # [CLS] x [SEP]: 3 tokens
    await post(fake_client, {"input": ["a b", "c"]})  # 4 + 3 tokens
    assert (await post(fake_client, {"input": ""})).status_code == 400
    after = (await fake_client.get("/metrics")).text
    model = {"model": MODEL_ID}

    def moved(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    ok = {"route": "/v1/embeddings", "status": "200"}
    assert moved("embedserve_http_requests_total", **ok) == 2
    assert moved("embedserve_http_requests_total", route="/v1/embeddings", status="400") == 1
    assert moved("embedserve_batch_inputs_total", **model) == 3
    assert moved("embedserve_tokens_total", **model) == 10
    assert 2 <= moved("embedserve_batches_total", **model) <= 3
    assert moved("embedserve_rejected_requests_total", **model) == 0


async def test_request_id_echoed_or_generated(fake_client: httpx.AsyncClient) -> None:
    echoed = await fake_client.post(EMBED, json={"input": "x"}, headers={"x-request-id": "abc-1"})
    assert echoed.headers["x-request-id"] == "abc-1"
    generated = await fake_client.get("/nowhere")
    assert len(generated.headers["x-request-id"]) >= 16


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
