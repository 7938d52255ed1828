"""A reranker (a tiny BERT cross-encoder the test builds) served beside the bundled embedding
model by one real `embedserve serve` process from a models file, on the default backend (the
ONNX export with its classification head): cohere's `ClientV2.rerank` unchanged but for the base
URL, and each other dialect's rerank and score route, give `CrossEncoder.predict`'s scores;
over-long queries and misuse get each dialect's error."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import cohere
import httpx
import numpy as np
import pytest
from sentence_transformers import CrossEncoder

from embedserve.bench.workloads import generate_texts
from tests.conftest import ServerProcess, start_server
from tests.e2e.shared import MODEL_ID, TEXTS, TIMEOUT_S
from tests.models.tiny_models import MAX_SEQ_LENGTH, build_cross_encoder

pytestmark = pytest.mark.slow
RERANKER = "tiny-reranker"
QUERY = "where do whales live"
DOCUMENTS = [
    "whales live in every ocean",
    "a recipe for sourdough bread " * 40,  # over the model's 128 tokens: the document is cut
    "trains cross the bridge at noon",
    TEXTS[0],
]


@pytest.fixture(scope="module")
def reranker_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_cross_encoder(tmp_path_factory.mktemp("reranker") / "ce", seed=4)


@pytest.fixture(scope="module")
def expected(reranker_dir: Path) -> np.ndarray:
    model = CrossEncoder(str(reranker_dir), device="cpu", max_length=MAX_SEQ_LENGTH)
    return np.asarray(model.predict([(QUERY, document) for document in DOCUMENTS]))


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, reranker_dir: Path, onnx_cache_dir: Path
) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("rerank-server")
    models = folder / "models.yaml"
    entries = f"  - id: {MODEL_ID}\n  - id: {RERANKER}\n    path: {reranker_dir}\n"
    models.write_text("models:\n" + entries)
    server = start_server(
        ["--config", str(models), "--cache-dir", str(onnx_cache_dir)], folder / "server.log"
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=TIMEOUT_S) as raw:
        yield raw


def test_cohere_sdk_reranks_with_the_cross_encoder(
    server: ServerProcess, expected: np.ndarray
) -> None:
    co = cohere.ClientV2(api_key="unused", base_url=server.base_url, timeout=TIMEOUT_S)
    response = co.rerank(model=RERANKER, query=QUERY, documents=DOCUMENTS, top_n=3)
    best = list(np.argsort(-expected, kind="stable")[:3])
    assert [result.index for result in response.results] == best
    scores = [result.relevance_score for result in response.results]
    assert np.allclose(scores, expected[best], atol=1e-5)
    with pytest.raises(cohere.errors.BadRequestError) as refused:
        co.rerank(model=RERANKER, query="whale " * 200, documents=DOCUMENTS)
    assert "query" in str(refused.value.body)


def test_every_rerank_dialect_gives_the_same_scores(
    http: httpx.Client, expected: np.ndarray
) -> None:
    body = {"model": RERANKER, "query": QUERY, "documents": DOCUMENTS}
    for path in ("/v1/rerank", "/v2/rerank", "/rerank", "/v3/rerank"):
        answer = http.post(path, json=body)
        assert answer.status_code == 200, (path, answer.text)
        got = {item["index"]: item["relevance_score"] for item in answer.json()["results"]}
        assert np.allclose([got[i] for i in range(len(DOCUMENTS))], expected, atol=1e-5), path
    jina = http.post("/v1/rerank", json={**body, "top_n": 1, "return_documents": True}).json()
    best = int(np.argmax(expected))
    assert jina["results"] == [
        {
            "index": best,
            "relevance_score": pytest.approx(float(expected[best]), abs=1e-5),
            "document": {"text": DOCUMENTS[best]},
        }
    ]
    tei = http.post(
        "/rerank",
        json={"model": RERANKER, "query": QUERY, "texts": DOCUMENTS, "raw_scores": True},
    ).json()
    logits = np.array([item["score"] for item in sorted(tei, key=lambda item: item["index"])])
    assert np.allclose(1 / (1 + np.exp(-logits)), expected, atol=1e-5)
    score = http.post("/score", json={"model": RERANKER, "text_1": QUERY, "text_2": DOCUMENTS})
    assert np.allclose([item["score"] for item in score.json()["data"]], expected, atol=1e-5)


def test_score_pairs_of_different_queries(http: httpx.Client, reranker_dir: Path) -> None:
    """vLLM's N:N `/score`: each pair its own query (some repeated, one document cut)."""
    queries = [QUERY, "sourdough", QUERY, "bridges " * 20]
    model = CrossEncoder(str(reranker_dir), device="cpu", max_length=MAX_SEQ_LENGTH)
    expected = model.predict(list(zip(queries, DOCUMENTS, strict=True)))
    body = {"model": RERANKER, "text_1": queries, "text_2": DOCUMENTS}
    answer = http.post("/score", json=body)
    assert answer.status_code == 200, answer.text
    assert [item["index"] for item in answer.json()["data"]] == list(range(len(DOCUMENTS)))
    got = [item["score"] for item in answer.json()["data"]]
    assert np.allclose(got, expected, atol=1e-5)


def test_models_serve_side_by_side_with_their_tasks(http: httpx.Client) -> None:
    cards = {card["id"]: card["task"] for card in http.get("/v1/models").json()["data"]}
    assert cards == {MODEL_ID: "embed", RERANKER: "rerank"}
    vectors = http.post("/v1/embeddings", json={"model": MODEL_ID, "input": QUERY})
    assert len(vectors.json()["data"][0]["embedding"]) == 384
    refused = http.post("/v1/embeddings", json={"model": RERANKER, "input": QUERY})
    assert refused.status_code == 400 and "reranker" in refused.json()["error"]["message"]
    tei = http.post("/rerank", json={"model": RERANKER, "query": "whale " * 200, "texts": ["x"]})
    assert tei.status_code in (400, 413, 422) and set(tei.json()) == {"error", "error_type"}


def test_verify_the_served_reranker(
    server: ServerProcess, reranker_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`embedserve verify --url` on a reranker: its /score against CrossEncoder.predict."""
    from embedserve.cli import main

    argv = ["verify", "--url", server.base_url, "--model", str(reranker_dir)]
    assert main([*argv, "--served-model", RERANKER]) == 0
    output = capsys.readouterr().out
    assert "top-1 passage agreement: 100%" in output and "PASS" in output


def test_128_clients_reranking_64_documents_get_no_429_at_defaults(
    server: ServerProcess, reranker_dir: Path
) -> None:
    """A bounded-concurrency client (128 in flight, 64 documents each, mixed lengths) is never
    refused at the default limits, and each answer is its own request's ranking."""
    texts = generate_texts("mixed", 2000, seed=3)
    bodies = [
        {
            "model": RERANKER,
            "query": " ".join(texts[i].split()[:12]),  # short: CrossEncoder would cut a long one
            "documents": texts[i * 7 % 1900 :][:64],
        }
        for i in range(128)
    ]

    async def post_all() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=128)
        async with httpx.AsyncClient(
            base_url=server.base_url, timeout=300, limits=limits
        ) as client:
            return list(await asyncio.gather(*(client.post("/v1/rerank", json=b) for b in bodies)))

    answers = asyncio.run(post_all())
    assert [answer.status_code for answer in answers] == [200] * len(bodies)
    model = CrossEncoder(str(reranker_dir), device="cpu", max_length=MAX_SEQ_LENGTH)
    for body, answer in list(zip(bodies, answers, strict=True))[::32]:
        expected = model.predict([(body["query"], document) for document in body["documents"]])
        got = {item["index"]: item["relevance_score"] for item in answer.json()["results"]}
        assert np.allclose([got[i] for i in range(64)], expected, atol=1e-5)
