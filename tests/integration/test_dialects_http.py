"""TEI, Ollama and Cohere routes over HTTP (in-process app, fake backend): the same vectors as
the OpenAI route for the same input and options, each dialect's fields mapped, and errors in each
dialect's own shape."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import numpy as np
import pytest

from embedserve.output_dtypes import convert
from tests.integration.helpers import post

TEXTS = ["first text", "a second, longer text"]
LONG = "word " * 400
MODEL = "sentence-transformers/all-MiniLM-L6-v2"


async def openai_vectors(client: httpx.AsyncClient, texts: Any, **fields: Any) -> np.ndarray:
    data = (await post(client, {"input": texts, **fields})).json()["data"]
    return np.array([item["embedding"] for item in data], dtype=np.float32)


# TEI


@pytest.mark.parametrize("path", ["/embed", "/"])
async def test_tei_embed_is_bare_lists_equal_to_openai(
    fake_client: httpx.AsyncClient, path: str
) -> None:
    answer = await fake_client.post(path, json={"inputs": TEXTS})
    assert answer.status_code == 200
    assert np.array_equal(
        np.array(answer.json(), np.float32), await openai_vectors(fake_client, TEXTS)
    )
    single = (await fake_client.post(path, json={"inputs": TEXTS[0]})).json()
    assert len(single) == 1 and len(single[0]) == 384


@pytest.mark.parametrize(
    ("tei", "openai"),
    [
        ({"normalize": False}, {"normalize": False}),
        ({"truncate": True}, {"truncate": "END"}),
        ({"truncate": True, "truncation_direction": "Left"}, {"truncate": "START"}),
    ],
)
async def test_tei_fields_map_to_ours(
    fake_client: httpx.AsyncClient, tei: dict[str, Any], openai: dict[str, Any]
) -> None:
    texts = [LONG, TEXTS[0]] if "truncate" in tei else TEXTS
    got = (await fake_client.post("/embed", json={"inputs": texts, **tei})).json()
    assert np.array_equal(
        np.array(got, np.float32), await openai_vectors(fake_client, texts, **openai)
    )


async def test_tei_token_ids_and_errors(fake_client: httpx.AsyncClient) -> None:
    ids = [[101, 2034, 3793, 102]]
    got = (await fake_client.post("/embed", json={"inputs": ids})).json()
    assert np.array_equal(np.array(got, np.float32), await openai_vectors(fake_client, ids))
    empty = await fake_client.post("/embed", json={"inputs": []})
    assert empty.status_code == 400 and empty.json()["error_type"] == "Empty"
    long = await fake_client.post("/embed", json={"inputs": LONG})
    assert long.status_code == 422
    assert set(long.json()) == {"error", "error_type"} and long.json()["error_type"] == "Validation"
    assert "256" in long.json()["error"]
    wrong = await fake_client.post("/embed", json={"inputs": "x", "normalize": "yes"})
    assert wrong.status_code == 422 and "normalize" in wrong.json()["error"]


async def test_tei_info(fake_client: httpx.AsyncClient) -> None:
    info = (await fake_client.get("/info")).json()
    assert info["model_id"] == MODEL and info["max_input_length"] == 256
    assert info["model_type"] == {"embedding": {"pooling": "mean"}}
    assert info["model_dtype"] == "float32" and info["auto_truncate"] is False


# Ollama


@pytest.mark.parametrize("name", [MODEL, MODEL + ":latest", None])
async def test_ollama_embed_equals_openai(fake_client: httpx.AsyncClient, name: str | None) -> None:
    body = {"input": TEXTS} | ({"model": name} if name else {})
    answer = (await fake_client.post("/api/embed", json=body)).json()
    assert answer["model"] == (name or MODEL)
    assert np.array_equal(
        np.array(answer["embeddings"], np.float32), await openai_vectors(fake_client, TEXTS)
    )
    assert (
        answer["prompt_eval_count"]
        == (await post(fake_client, {"input": TEXTS})).json()["usage"]["prompt_tokens"]
    )
    assert answer["load_duration"] == 0 and answer["total_duration"] > 0


async def test_ollama_truncation_loading_and_errors(fake_client: httpx.AsyncClient) -> None:
    cut = (await fake_client.post("/api/embed", json={"model": MODEL, "input": LONG})).json()
    assert np.array_equal(
        np.array(cut["embeddings"], np.float32),
        await openai_vectors(fake_client, [LONG], truncate="END"),
    )
    refused = await fake_client.post(
        "/api/embed", json={"model": MODEL, "input": LONG, "truncate": False}
    )
    assert refused.status_code == 400 and set(refused.json()) == {"error"}
    loading = (await fake_client.post("/api/embed", json={"model": MODEL})).json()
    assert loading["embeddings"] == [] and loading["prompt_eval_count"] == 0
    missing = await fake_client.post("/api/embed", json={"model": "nomic-embed-text", "input": "x"})
    assert missing.status_code == 404 and "nomic-embed-text" in missing.json()["error"]


async def test_ollama_legacy_tags_and_version(fake_client: httpx.AsyncClient) -> None:
    legacy = (
        await fake_client.post("/api/embeddings", json={"model": MODEL, "prompt": TEXTS[0]})
    ).json()
    assert np.array_equal(
        np.array([legacy["embedding"]], np.float32), await openai_vectors(fake_client, TEXTS[:1])
    )
    assert (
        await fake_client.post("/api/embeddings", json={"model": MODEL, "prompt": ""})
    ).json() == {"embedding": []}
    tags = (await fake_client.get("/api/tags")).json()["models"]
    assert MODEL + ":latest" in {tag["name"] for tag in tags}
    assert (await fake_client.get("/api/version")).json()["version"]


# Cohere


async def test_cohere_embedding_types_equal_our_output_dtypes(
    fake_client: httpx.AsyncClient,
) -> None:
    body = {
        "model": MODEL,
        "texts": TEXTS,
        "input_type": "search_document",
        "embedding_types": ["float", "int8", "ubinary", "base64"],
    }
    answer = (await fake_client.post("/v2/embed", json=body)).json()
    floats = await openai_vectors(fake_client, TEXTS)
    embeddings = answer["embeddings"]
    assert np.array_equal(np.array(embeddings["float"], np.float32), floats)
    int8 = await post(fake_client, {"input": TEXTS, "output_dtype": "int8"})
    assert embeddings["int8"] == [item["embedding"] for item in int8.json()["data"]]
    assert np.array_equal(np.array(embeddings["ubinary"]), convert(floats, "ubinary"))
    decoded = [np.frombuffer(base64.b64decode(v), "<f4") for v in embeddings["base64"]]
    assert np.array_equal(np.array(decoded), floats)
    assert answer["texts"] == TEXTS and answer["response_type"] == "embeddings_by_type"
    usage = (await post(fake_client, {"input": TEXTS})).json()["usage"]["prompt_tokens"]
    assert answer["meta"]["billed_units"]["input_tokens"] == usage


async def test_cohere_inputs_truncation_and_errors(fake_client: httpx.AsyncClient) -> None:
    inputs = [{"content": [{"type": "text", "text": t}]} for t in TEXTS]
    answer = (await fake_client.post("/v2/embed", json={"inputs": inputs})).json()
    assert np.array_equal(
        np.array(answer["embeddings"]["float"], np.float32),
        await openai_vectors(fake_client, TEXTS),
    )
    start = (
        await fake_client.post("/v2/embed", json={"texts": [LONG], "truncate": "START"})
    ).json()
    assert np.array_equal(
        np.array(start["embeddings"]["float"], np.float32),
        await openai_vectors(fake_client, [LONG], truncate="START"),
    )
    for body, field in [
        ({"texts": [LONG], "truncate": "NONE"}, "256"),
        ({"texts": ["x"], "images": ["data:image/png;base64,AAAA"]}, "images"),
        ({"texts": ["x"], "input_type": "image"}, "input_type"),
        ({"texts": ["x"], "embedding_types": ["float64"]}, "embedding_types"),
        ({"texts": ["x"], "max_tokens": 10, "truncate": "NONE"}, "max_tokens"),
        ({"texts": ["x"], "inputs": inputs}, "texts"),
    ]:
        refused = await fake_client.post("/v2/embed", json=body)
        assert refused.status_code == 400, body
        assert set(refused.json()) == {"message"} and field in refused.json()["message"], body
