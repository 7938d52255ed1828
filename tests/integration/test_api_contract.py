"""The HTTP contract of shared/API.md, row by row, against the in-process app (fake backend,
real tokenizer of the bundled model)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from embedserve.engine import Engine
from embedserve.models import ModelSpec
from embedserve.settings import ServerSettings
from tests.conftest import MODEL_ALIAS, MODEL_ID, fake_runner, serve_in_process
from tests.integration.helpers import EMBED, assert_error, metric, post


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
