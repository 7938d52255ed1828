"""Rerank and score over HTTP with an embedding model (in-process app, fake backend): scores are
the cosines of the OpenAI route's vectors, ordered, cut to top_n, in each origin's format."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest

from tests.integration.helpers import post

QUERY = "where do whales live"
DOCS = ["whales live in every ocean", "a recipe for bread", "the deep sea is home to whales"]
LONG = "word " * 400


async def cosines(client: httpx.AsyncClient, query: str, docs: list[str]) -> np.ndarray:
    q = (await post(client, {"input": [query], "input_type": "query"})).json()["data"]
    d = (await post(client, {"input": docs, "input_type": "document", "truncate": "END"})).json()
    qv = np.array(q[0]["embedding"], np.float32)
    return np.array([np.dot(qv, np.array(item["embedding"], np.float32)) for item in d["data"]])


@pytest.mark.parametrize("path", ["/v1/rerank", "/v2/rerank", "/rerank", "/v3/rerank"])
async def test_rerank_orders_by_cosine(fake_client: httpx.AsyncClient, path: str) -> None:
    expected = await cosines(fake_client, QUERY, DOCS)
    answer = await fake_client.post(path, json={"query": QUERY, "documents": DOCS})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    order = [item["index"] for item in body["results"]]
    assert order == list(np.argsort(-expected, kind="stable"))
    scores = [item["relevance_score"] for item in body["results"]]
    assert np.allclose(scores, expected[order], atol=1e-6)
    with_docs = path != "/v2/rerank"
    assert all(("document" in item) == with_docs for item in body["results"])
    assert body["usage"]["total_tokens"] > 0 and body["id"]


async def test_rerank_options(fake_client: httpx.AsyncClient) -> None:
    body = {"query": QUERY, "documents": [{"text": d} for d in DOCS], "top_n": 2}
    answer = (await fake_client.post("/v2/rerank", json=body | {"return_documents": True})).json()
    assert len(answer["results"]) == 2
    best = answer["results"][0]
    assert best["document"] == {"text": DOCS[best["index"]]}
    cut = (await fake_client.post("/v1/rerank", json={"query": QUERY, "documents": [LONG]})).json()
    assert len(cut["results"]) == 1  # an over-long document is cut, not refused


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"query": QUERY, "documents": []}, 400),
        ({"query": QUERY, "documents": DOCS, "top_n": 0}, 400),
        ({"query": LONG, "documents": DOCS}, 400),  # the query is never cut
        ({"documents": DOCS}, 400),
        ({"query": QUERY, "documents": DOCS, "model": "no-such-model"}, 404),
    ],
)
async def test_rerank_refusals(
    fake_client: httpx.AsyncClient, body: dict[str, Any], status: int
) -> None:
    answer = await fake_client.post("/v1/rerank", json=body)
    assert answer.status_code == status
    assert "message" in answer.json()["error"]
    cohere = await fake_client.post("/v2/rerank", json=body)
    assert cohere.status_code == status and set(cohere.json()) == {"message"}
    ovms = await fake_client.post("/v3/rerank", json=body)
    assert ovms.status_code == status and isinstance(ovms.json()["error"], str)


async def test_tei_rerank(fake_client: httpx.AsyncClient) -> None:
    expected = await cosines(fake_client, QUERY, DOCS)
    body = {"query": QUERY, "texts": DOCS, "return_text": True}
    answer = (await fake_client.post("/rerank", json=body)).json()
    assert [item["index"] for item in answer] == list(np.argsort(-expected, kind="stable"))
    assert all(item["text"] == DOCS[item["index"]] for item in answer)
    assert set(answer[0]) == {"index", "score", "text"}
    refused = await fake_client.post("/rerank", json={"query": LONG, "texts": DOCS})
    assert refused.status_code == 422 and refused.json()["error_type"] == "Validation"
    whole = {"query": QUERY, "texts": [LONG], "truncate": False}  # TEI: no cut, so refused
    uncut = await fake_client.post("/rerank", json=whole)
    assert uncut.status_code == 422 and uncut.json()["error_type"] == "Validation"
    cut = await fake_client.post("/rerank", json=whole | {"truncate": True})
    assert cut.status_code == 200 and len(cut.json()) == 1


async def test_cohere_max_tokens_per_doc_cuts_documents(fake_client: httpx.AsyncClient) -> None:
    """Cohere v2's `max_tokens_per_doc`: each document is scored on its first tokens only."""
    long = "whales live in every ocean and sing songs under the ice"
    body = {"query": QUERY, "documents": [long], "max_tokens_per_doc": 5}
    budget = (await fake_client.post("/v2/rerank", json=body)).json()["results"][0]
    whole = await fake_client.post("/v2/rerank", json={**body, "max_tokens_per_doc": None})
    assert whole.json()["results"][0]["relevance_score"] != budget["relevance_score"]
    first_five = await cosines(fake_client, QUERY, ["whales live in every ocean"])
    assert budget["relevance_score"] == pytest.approx(float(first_five[0]), abs=1e-6)
    refused = await fake_client.post("/v2/rerank", json={**body, "max_tokens_per_doc": 0})
    assert refused.status_code == 400 and "max_tokens_per_doc" in refused.json()["message"]


async def test_score_one_to_one_one_to_many_and_pairwise(fake_client: httpx.AsyncClient) -> None:
    expected = await cosines(fake_client, QUERY, DOCS)
    one = (await fake_client.post("/score", json={"text_1": QUERY, "text_2": DOCS[0]})).json()
    assert one["object"] == "list" and one["data"][0]["object"] == "score"
    assert np.isclose(one["data"][0]["score"], expected[0], atol=1e-6)
    many = (await fake_client.post("/v1/score", json={"text_1": QUERY, "text_2": DOCS})).json()
    assert np.allclose([item["score"] for item in many["data"]], expected, atol=1e-6)
    assert [item["index"] for item in many["data"]] == [0, 1, 2]
    pairs = {"text_1": [QUERY, QUERY], "text_2": DOCS[:2]}
    pairwise = (await fake_client.post("/score", json=pairs)).json()
    assert np.allclose([item["score"] for item in pairwise["data"]], expected[:2], atol=1e-6)
    assert pairwise["usage"]["total_tokens"] == pairwise["usage"]["prompt_tokens"] > 0
    bad = await fake_client.post("/score", json={"text_1": [QUERY, QUERY], "text_2": DOCS})
    assert bad.status_code == 400 and "text_1" in bad.json()["error"]["message"]
