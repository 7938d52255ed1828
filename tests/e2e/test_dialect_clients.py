"""Other servers' own SDKs against a real `embedserve serve` process, unchanged but for the
base URL: cohere (`ClientV2.embed`), ollama (`Client.embed`, `.embeddings`, `.list`),
huggingface_hub (`InferenceClient.feature_extraction`, TEI's route) and langchain-ollama
(`OllamaEmbeddings`). Every dialect's vectors equal the OpenAI route's for the same input; with
API keys, each SDK's own way of sending one works and each dialect's 401 has its shape."""

from __future__ import annotations

from collections.abc import Iterator

import cohere
import httpx
import numpy as np
import ollama
import openai
import pytest
from huggingface_hub import InferenceClient
from langchain_ollama import OllamaEmbeddings

from tests.conftest import ServerProcess, start_server
from tests.e2e.shared import MODEL_ID, TEXTS, TIMEOUT_S, embed_vectors

pytestmark = pytest.mark.slow
KEY = "dialect-secret"


def as_float32(vectors: object) -> np.ndarray:
    return np.asarray(vectors, dtype=np.float32)


@pytest.fixture(scope="module")
def expected(client: openai.OpenAI) -> np.ndarray:
    return embed_vectors(client.embeddings.create(model=MODEL_ID, input=TEXTS))


def test_cohere_client_v2(
    real_server: ServerProcess, client: openai.OpenAI, expected: np.ndarray
) -> None:
    co = cohere.ClientV2(api_key="unused", base_url=real_server.base_url, timeout=TIMEOUT_S)
    response = co.embed(
        model=MODEL_ID,
        texts=TEXTS,
        input_type="search_document",
        embedding_types=["float", "int8"],
    )
    assert np.array_equal(as_float32(response.embeddings.float_), expected)
    int8 = client.embeddings.create(
        model=MODEL_ID, input=TEXTS, encoding_format="float", extra_body={"output_dtype": "int8"}
    )
    assert response.embeddings.int8 == [[int(v) for v in item.embedding] for item in int8.data]
    assert response.meta is not None and response.meta.billed_units is not None
    assert response.meta.billed_units.input_tokens > 0


def test_cohere_rerank(real_server: ServerProcess, client: openai.OpenAI) -> None:
    """An embedding model reranks by cosine (vLLM's behaviour), best first, `top_n` kept."""
    co = cohere.ClientV2(api_key="unused", base_url=real_server.base_url, timeout=TIMEOUT_S)
    query, documents = TEXTS[1], TEXTS[2:] + TEXTS[:1]
    response = co.rerank(model=MODEL_ID, query=query, documents=documents, top_n=2)
    vectors = embed_vectors(client.embeddings.create(model=MODEL_ID, input=[query, *documents]))
    cosines = vectors[1:] @ vectors[0]
    best = list(np.argsort(-cosines, kind="stable")[:2])
    assert [result.index for result in response.results] == best
    scores = [result.relevance_score for result in response.results]
    assert np.allclose(scores, cosines[best], atol=1e-5)


def test_ollama_client(real_server: ServerProcess, expected: np.ndarray) -> None:
    client = ollama.Client(host=real_server.base_url, timeout=TIMEOUT_S)
    response = client.embed(model=MODEL_ID, input=TEXTS)
    assert np.array_equal(as_float32(response.embeddings), expected)
    assert response.prompt_eval_count and response.prompt_eval_count > 0
    legacy = client.embeddings(model=MODEL_ID + ":latest", prompt=TEXTS[0])
    assert np.array_equal(as_float32([legacy.embedding]), expected[:1])
    assert MODEL_ID + ":latest" in {model.model for model in client.list().models}
    with pytest.raises(ollama.ResponseError) as caught:
        client.embed(model="nomic-embed-text", input="x")
    assert caught.value.status_code == 404 and "nomic-embed-text" in caught.value.error


def test_langchain_ollama(real_server: ServerProcess, expected: np.ndarray) -> None:
    embeddings = OllamaEmbeddings(model=MODEL_ID, base_url=real_server.base_url)
    assert np.array_equal(as_float32(embeddings.embed_documents(TEXTS)), expected)
    assert np.array_equal(as_float32([embeddings.embed_query(TEXTS[0])]), expected[:1])


@pytest.mark.parametrize("route", ["", "/embed"])
def test_huggingface_inference_client(
    real_server: ServerProcess, expected: np.ndarray, route: str
) -> None:
    hub = InferenceClient(model=real_server.base_url + route, timeout=TIMEOUT_S)
    one = hub.feature_extraction(TEXTS[1])
    assert one.shape == (1, expected.shape[1])
    assert np.array_equal(one, expected[1:2])
    raw = hub.feature_extraction(TEXTS[1], normalize=False)
    assert not np.allclose(np.linalg.norm(raw), 1.0)
    assert np.allclose(raw / np.linalg.norm(raw), expected[1:2], atol=1e-6)


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    log = tmp_path_factory.mktemp("keyed") / "server.log"
    server = start_server(["--backend", "fake", "--api-key", KEY], log)
    yield server
    server.stop()


def test_each_sdk_sends_the_key(keyed: ServerProcess) -> None:
    co = cohere.ClientV2(api_key=KEY, base_url=keyed.base_url, timeout=TIMEOUT_S)
    assert co.embed(model=MODEL_ID, texts=["x"], input_type="search_query").embeddings.float_
    olla = ollama.Client(host=keyed.base_url, headers={"Authorization": f"Bearer {KEY}"})
    assert olla.embed(model=MODEL_ID, input="x").embeddings
    hub = InferenceClient(model=keyed.base_url + "/embed", token=KEY, timeout=TIMEOUT_S)
    assert hub.feature_extraction("x").shape == (1, 384)


@pytest.mark.parametrize(
    ("path", "body", "shape"),
    [
        ("/embed", {"inputs": "x"}, {"error", "error_type"}),
        ("/api/embed", {"model": MODEL_ID, "input": "x"}, {"error"}),
        ("/v2/embed", {"texts": ["x"]}, {"message"}),
        ("/v1/embeddings", {"input": "x"}, {"error"}),
    ],
)
def test_a_missing_key_is_refused_in_each_dialect(
    keyed: ServerProcess, path: str, body: dict[str, object], shape: set[str]
) -> None:
    answer = httpx.post(keyed.base_url + path, json=body, timeout=TIMEOUT_S)
    assert answer.status_code == 401
    assert set(answer.json()) == shape
    if path == "/v1/embeddings":
        assert answer.json()["error"]["code"] == "invalid_api_key"
