"""The contract over a real socket with a plain HTTP client (httpx): encodings, request ids,
vLLM extras, order, model names."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import numpy as np
import pytest

from tests.e2e.shared import (
    DIMENSION,
    MODEL_ALIAS,
    MODEL_ID,
    TEXTS,
    Reference,
    assert_matches_reference,
    cosines,
    error_of,
    post_embeddings,
    response_vectors,
)


def test_base64_is_little_endian_float32_of_the_float_vector(
    http: httpx.Client, reference: Reference
) -> None:
    body = {"model": MODEL_ID, "input": TEXTS}
    encoded = post_embeddings(http, {**body, "encoding_format": "base64"})
    floats = post_embeddings(http, {**body, "encoding_format": "float"})
    default = post_embeddings(http, body)

    decoded = []
    for item in encoded["data"]:
        assert isinstance(item["embedding"], str)
        raw = base64.b64decode(item["embedding"], validate=True)
        assert len(raw) == 4 * DIMENSION
        decoded.append(np.frombuffer(raw, dtype="<f4"))
    decoded_vectors = np.stack(decoded)
    float_vectors = response_vectors(floats)
    assert all(isinstance(x, float) for x in floats["data"][0]["embedding"])
    np.testing.assert_array_equal(decoded_vectors, float_vectors)
    np.testing.assert_array_equal(response_vectors(default), float_vectors)  # float is default
    assert_matches_reference(decoded_vectors, reference.vectors(TEXTS))
    assert encoded["usage"] == floats["usage"]


def test_request_id_is_returned_and_echoed(http: httpx.Client) -> None:
    body = {"model": MODEL_ID, "input": "hello"}
    first = http.post("/v1/embeddings", json=body)
    second = http.post("/v1/embeddings", json=body)
    assert first.status_code == second.status_code == 200
    generated = [first.headers.get("x-request-id"), second.headers.get("x-request-id")]
    assert all(generated), generated
    assert generated[0] != generated[1]

    sent = "client-trace-0123456789"
    echoed = http.post("/v1/embeddings", json=body, headers={"x-request-id": sent})
    assert echoed.status_code == 200
    assert echoed.headers["x-request-id"] == sent
    failed = http.post(
        "/v1/embeddings", json={**body, "model": "nope"}, headers={"X-Request-ID": sent}
    )
    error_of(failed, 404)
    assert failed.headers["x-request-id"] == sent


@pytest.mark.parametrize(
    "extra",
    [
        {"trace": "abc", "nested": {"list": [1, 2.5, None, True], "text": "東京 😀"}},
        ["a", 1, None],
        "just a string",
        0,
    ],
)
def test_additional_data_is_echoed(http: httpx.Client, extra: Any) -> None:
    payload = post_embeddings(
        http, {"model": MODEL_ID, "input": ["hi", "there"], "additional_data": extra}
    )
    assert payload["additional_data"] == extra
    assert len(payload["data"]) == 2


def test_extra_body_keys_are_applied(http: httpx.Client, reference: Reference) -> None:
    text = TEXTS[2]
    encoded = post_embeddings(
        http, {"model": MODEL_ID, "input": [text], "extra_body": {"encoding_format": "base64"}}
    )
    assert isinstance(encoded["data"][0]["embedding"], str)

    truncated = post_embeddings(
        http, {"model": MODEL_ID, "input": [text], "extra_body": {"truncate_prompt_tokens": 5}}
    )
    assert truncated["usage"]["prompt_tokens"] == 5
    ids = reference.token_ids(text)
    kept = [*ids[:4], ids[-1]]  # truncation keeps [CLS] ... [SEP]
    by_ids = post_embeddings(http, {"model": MODEL_ID, "input": [kept]})
    np.testing.assert_allclose(response_vectors(truncated), response_vectors(by_ids), atol=1e-6)
    full = response_vectors(post_embeddings(http, {"model": MODEL_ID, "input": [text]}))
    assert cosines(response_vectors(truncated), full)[0] < 0.99

    rejected = http.post(
        "/v1/embeddings",
        json={"model": MODEL_ID, "input": [text], "extra_body": {"dimensions": 128}},
    )
    assert error_of(rejected, 400)["code"] == "invalid_dimensions"

    conflict = http.post(
        "/v1/embeddings",
        json={
            "model": MODEL_ID,
            "input": [text],
            "encoding_format": "float",
            "extra_body": {"encoding_format": "base64"},
        },
    )
    assert error_of(conflict, 400)["type"] == "invalid_request_error"


def test_data_is_in_input_order(http: httpx.Client, reference: Reference) -> None:
    texts = [TEXTS[5], TEXTS[0], "zebra", TEXTS[3], "a second short one", TEXTS[1]]
    payload = post_embeddings(http, {"model": MODEL_ID, "input": texts})
    assert [item["index"] for item in payload["data"]] == list(range(len(texts)))
    assert all(item["object"] == "embedding" for item in payload["data"])
    vectors = response_vectors(payload)
    expected = reference.vectors(texts)
    assert_matches_reference(vectors, expected)
    similarity = vectors.astype(np.float64) @ expected.astype(np.float64).T
    assert np.array_equal(np.argmax(similarity, axis=1), np.arange(len(texts)))


@pytest.mark.parametrize("name", [MODEL_ID, MODEL_ALIAS])
def test_model_field_echoes_the_requested_name(http: httpx.Client, name: str) -> None:
    payload = post_embeddings(http, {"model": name, "input": "hello"})
    assert payload["model"] == name
    assert payload["object"] == "list"


def test_model_may_be_omitted_with_one_model(http: httpx.Client) -> None:
    payload = post_embeddings(http, {"input": "hello"})
    assert payload["model"] == MODEL_ID


@pytest.mark.parametrize(
    "path", ["/v1/models/sentence-transformers%2Fall-MiniLM-L6-v2", f"/v1/models/{MODEL_ID}"]
)
def test_model_retrieve_with_raw_or_encoded_slash(http: httpx.Client, path: str) -> None:
    response = http.get(path)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == MODEL_ID
