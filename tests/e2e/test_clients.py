"""Real clients (the openai SDK, LangChain, raw httpx) against a real `embedserve serve` process."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import langchain_openai
import numpy as np
import openai
import pytest

from tests.conftest import ServerProcess
from tests.e2e.shared import (
    DIMENSION,
    MAX_TOKENS,
    MODEL_ALIAS,
    MODEL_ID,
    TEXTS,
    TIMEOUT_S,
    FloatArray,
    Reference,
    as_texts,
    assert_matches_reference,
    concurrent_cases,
    cosines,
    embed_vectors,
    response_vectors,
)

pytestmark = pytest.mark.slow


def test_openai_default_base64_and_float_agree_and_match_reference(
    client: openai.OpenAI, reference: Reference
) -> None:
    raw = client.embeddings.with_raw_response.create(model=MODEL_ID, input=TEXTS)
    assert b'"encoding_format":"base64"' in raw.http_request.content.replace(b" ", b"")
    default = raw.parse()
    floats = client.embeddings.create(model=MODEL_ID, input=TEXTS, encoding_format="float")

    default_vectors, float_vectors = embed_vectors(default), embed_vectors(floats)
    assert default_vectors.shape == (len(TEXTS), DIMENSION)
    np.testing.assert_array_equal(default_vectors, float_vectors)
    assert_matches_reference(default_vectors, reference.vectors(TEXTS))
    for response in (default, floats):
        assert response.object == "list"
        assert response.model == MODEL_ID
        assert response.usage.prompt_tokens == reference.token_count(TEXTS)
        assert response.usage.total_tokens == response.usage.prompt_tokens


def test_openai_per_request_prompt_and_normalize_fields(
    client: openai.OpenAI, reference: Reference
) -> None:
    """The bundled model declares no prompts: an input_type adds none (as Cohere's SDK always
    sends one), a prompt_name is a 400 naming the field, normalize=false gives raw vectors."""
    typed = client.embeddings.create(
        model=MODEL_ID, input=TEXTS, extra_body={"input_type": "search_document"}
    )
    assert_matches_reference(embed_vectors(typed), reference.vectors(TEXTS))
    assert typed.usage.prompt_tokens == reference.token_count(TEXTS)
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=MODEL_ID, input=TEXTS, extra_body={"prompt_name": "query"})
    assert caught.value.status_code == 400
    assert "its prompts: none" in caught.value.message and "prompt_name" in str(caught.value.body)
    raw = embed_vectors(
        client.embeddings.create(model=MODEL_ID, input=TEXTS, extra_body={"normalize": False})
    )
    norms = np.linalg.norm(raw, axis=1)
    assert np.all(np.abs(norms - 1) > 1e-3)
    assert_matches_reference(raw / norms[:, None], reference.vectors(TEXTS))


def test_openai_long_inputs_and_compact_outputs(
    client: openai.OpenAI, reference: Reference
) -> None:
    """`truncate` and `output_dtype` through `extra_body` on the real model (the SDK decodes
    base64 as float32, so compact types are asked for as JSON numbers)."""
    long_text = " ".join(TEXTS) * 12  # far over 256 tokens
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model=MODEL_ID, input=long_text)
    end = client.embeddings.create(model=MODEL_ID, input=long_text, extra_body={"truncate": "END"})
    cut = client.embeddings.create(
        model=MODEL_ID, input=long_text, extra_body={"truncate_prompt_tokens": -1}
    )
    np.testing.assert_allclose(embed_vectors(end), embed_vectors(cut), atol=1e-6)
    assert end.usage.prompt_tokens == MAX_TOKENS
    whole = client.embeddings.create(
        model=MODEL_ID, input=long_text, extra_body={"truncate": "CHUNK"}
    )
    assert whole.usage.prompt_tokens > MAX_TOKENS and len(whole.data[0].embedding) == DIMENSION
    packed = client.embeddings.create(
        model=MODEL_ID,
        input=TEXTS,
        encoding_format="float",
        extra_body={"output_dtype": "ubinary"},
    )
    bits = np.packbits(reference.vectors(TEXTS) > 0, axis=-1)
    got = np.array([item.embedding for item in packed.data])
    assert got.shape == (len(TEXTS), DIMENSION // 8)
    assert np.mean(got == bits) > 0.95  # sign bits of near-identical vectors (a few may flip)


def test_openai_single_string_input(client: openai.OpenAI, reference: Reference) -> None:
    response = client.embeddings.create(model=MODEL_ID, input=TEXTS[1])
    assert len(response.data) == 1
    assert_matches_reference(embed_vectors(response), reference.vectors([TEXTS[1]]))
    assert response.usage.prompt_tokens == reference.token_count([TEXTS[1]])


def test_openai_models_list_and_retrieve(client: openai.OpenAI) -> None:
    models = list(client.models.list())
    ids = [model.id for model in models]
    assert MODEL_ID in ids
    assert MODEL_ALIAS in ids
    assert all(model.object == "model" for model in models)

    # The SDK percent-encodes the slash of the id (sentence-transformers%2Fall-MiniLM-L6-v2).
    retrieved = client.models.retrieve(MODEL_ID)
    assert retrieved.id == MODEL_ID
    assert retrieved.object == "model"
    assert client.models.retrieve(MODEL_ALIAS).id == MODEL_ALIAS
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such/model")


def test_openai_alias_works_as_model(client: openai.OpenAI) -> None:
    by_alias = client.embeddings.create(model=MODEL_ALIAS, input=TEXTS[:3])
    by_id = client.embeddings.create(model=MODEL_ID, input=TEXTS[:3])
    assert by_alias.model == MODEL_ALIAS
    np.testing.assert_allclose(embed_vectors(by_alias), embed_vectors(by_id), atol=1e-6)


def test_openai_native_dimensions_accepted(client: openai.OpenAI) -> None:
    plain = client.embeddings.create(model=MODEL_ID, input=TEXTS[:2])
    sized = client.embeddings.create(model=MODEL_ID, input=TEXTS[:2], dimensions=DIMENSION)
    assert embed_vectors(sized).shape == (2, DIMENSION)
    np.testing.assert_allclose(embed_vectors(sized), embed_vectors(plain), atol=1e-6)


def test_openai_smaller_dimensions_rejected(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=MODEL_ID, input=TEXTS[:2], dimensions=128)
    assert caught.value.status_code == 400
    assert caught.value.code == "invalid_dimensions"
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["code"] == "invalid_dimensions"
    assert caught.value.body["param"] == "dimensions"


def test_openai_unknown_model_is_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.embeddings.create(model="text-embedding-3-small", input="hello")
    assert caught.value.status_code == 404
    assert caught.value.code == "model_not_found"
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["type"] == "not_found_error"
    assert MODEL_ID in caught.value.body["message"]


async def test_async_openai_client(real_server: ServerProcess, reference: Reference) -> None:
    async with openai.AsyncOpenAI(
        base_url=real_server.base_url + "/v1", api_key="unused", max_retries=0, timeout=TIMEOUT_S
    ) as client:
        default, floats = await asyncio.gather(
            client.embeddings.create(model=MODEL_ID, input=TEXTS),
            client.embeddings.create(model=MODEL_ALIAS, input=TEXTS, encoding_format="float"),
        )
        ids = [model.id async for model in client.models.list()]
        retrieved = await client.models.retrieve(MODEL_ID)
        with pytest.raises(openai.BadRequestError) as caught:
            await client.embeddings.create(model=MODEL_ID, input=TEXTS[0], dimensions=128)

    np.testing.assert_allclose(embed_vectors(default), embed_vectors(floats), atol=1e-6)
    assert_matches_reference(embed_vectors(default), reference.vectors(TEXTS))
    assert (default.model, floats.model) == (MODEL_ID, MODEL_ALIAS)
    assert default.usage.prompt_tokens == reference.token_count(TEXTS)
    assert {MODEL_ID, MODEL_ALIAS} <= set(ids)
    assert retrieved.id == MODEL_ID
    assert caught.value.code == "invalid_dimensions"


def langchain_embeddings(server: ServerProcess) -> langchain_openai.OpenAIEmbeddings:
    return langchain_openai.OpenAIEmbeddings(
        model=MODEL_ID,
        base_url=server.base_url + "/v1",
        api_key="unused",  # type: ignore[arg-type]
        check_embedding_ctx_length=False,
        max_retries=0,
    )


def test_langchain_embed_documents_and_query(
    real_server: ServerProcess, reference: Reference
) -> None:
    embeddings = langchain_embeddings(real_server)
    documents = embeddings.embed_documents(TEXTS)
    assert len(documents) == len(TEXTS)
    assert_matches_reference(documents, reference.vectors(TEXTS))
    query = embeddings.embed_query(TEXTS[1])
    assert len(query) == DIMENSION
    assert_matches_reference([query], reference.vectors([TEXTS[1]]))


async def test_langchain_async_embed_documents(
    real_server: ServerProcess, reference: Reference
) -> None:
    embeddings = langchain_embeddings(real_server)
    documents = await embeddings.aembed_documents(TEXTS[:4])
    assert_matches_reference(documents, reference.vectors(TEXTS[:4]))
    query = await embeddings.aembed_query(TEXTS[4])
    assert_matches_reference([query], reference.vectors([TEXTS[4]]))


async def test_concurrent_requests_match_one_at_a_time(
    real_server: ServerProcess, reference: Reference
) -> None:
    cases = concurrent_cases()
    texts = [text for case in cases for text in as_texts(case)]
    assert len(set(texts)) == len(texts)
    limits = httpx.Limits(max_connections=len(cases), max_keepalive_connections=len(cases))
    async with httpx.AsyncClient(
        base_url=real_server.base_url, timeout=TIMEOUT_S, limits=limits
    ) as http:

        async def embed(value: str | list[str]) -> dict[str, Any]:
            response = await http.post("/v1/embeddings", json={"model": MODEL_ID, "input": value})
            assert response.status_code == 200, response.text
            payload: dict[str, Any] = response.json()
            return payload

        together = await asyncio.gather(*(embed(case) for case in cases))
        alone = [await embed(text) for text in texts]

    concurrent_vectors: list[FloatArray] = []
    for case, payload in zip(cases, together, strict=True):
        vectors = response_vectors(payload)
        assert vectors.shape == (len(as_texts(case)), DIMENSION)
        assert payload["usage"]["prompt_tokens"] == reference.token_count(as_texts(case))
        concurrent_vectors.extend(vectors)
    concurrent = np.stack(concurrent_vectors)
    sequential = np.concatenate([response_vectors(payload) for payload in alone])

    # Concurrent inputs are batched with other requests' inputs and padded to the longest one in
    # their batch, so the matrix shapes differ from a lone request and the last bits may move: hence
    # allclose and a cosine bound rather than exact equality.
    np.testing.assert_allclose(concurrent, sequential, atol=1e-6)
    assert cosines(concurrent, sequential).min() >= 0.999999
    assert_matches_reference(concurrent, reference.vectors(texts))
    # Every request got its own texts' vectors, not a neighbour's.
    similarity = concurrent.astype(np.float64) @ sequential.astype(np.float64).T
    assert np.array_equal(np.argmax(similarity, axis=1), np.arange(len(texts)))
