"""Cross-encoders against sentence-transformers' `CrossEncoder.predict` on a tiny BERT with token
types: pairs tokenized together with only the document cut, token types derived from the ids,
logits through the declared activation; then the torch backend, the executor and the routes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sentence_transformers import CrossEncoder
from tokenizers import Tokenizer
from transformers import AutoModelForSequenceClassification

from embedserve.executor import pad_batch
from embedserve.models.cross_encoder import pair_token_types, score_head
from tests.models.tiny_models import MAX_SEQ_LENGTH, build_cross_encoder

PAIRS = [
    ("where do whales live", "whales live in every ocean"),
    ("where do whales live", "a recipe for bread " * 40),  # cut: only the document
    ("a short query", "an unrelated passage about trains and bridges"),
]


def test_planned_path_equals_cross_encoder_predict(tmp_path: Path) -> None:
    path = build_cross_encoder(tmp_path / "ce")
    expected = CrossEncoder(str(path), device="cpu", max_length=MAX_SEQ_LENGTH).predict(PAIRS)
    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    tokenizer.enable_truncation(MAX_SEQ_LENGTH, strategy="only_second")
    tokenizer.no_padding()
    encodings = tokenizer.encode_batch(PAIRS)
    assert len(encodings[1].ids) == MAX_SEQ_LENGTH
    ids, mask = pad_batch([e.ids for e in encodings], pad_id=0)
    types = pair_token_types(ids, sep_id=tokenizer.token_to_id("[SEP]"))
    model = AutoModelForSequenceClassification.from_pretrained(str(path)).eval()
    with torch.no_grad():
        logits = model(
            input_ids=torch.from_numpy(ids),
            attention_mask=torch.from_numpy(mask),
            token_type_ids=torch.from_numpy(types),
        ).logits.numpy()
    head = score_head(json.loads((path / "config.json").read_text()))
    got = head.scores(logits)[:, 0]
    assert np.allclose(got, expected, atol=1e-5), (got, expected)


@pytest.mark.parametrize("architecture", ["bert", "xlm-roberta"])
@pytest.mark.parametrize("backend", ["torch", "onnx", "openvino"])
def test_backends_score_like_cross_encoder(tmp_path: Path, backend: str, architecture: str) -> None:
    """Each backend (the ONNX export and the IR built from it include the classification head):
    our pair tokenization, derived token types (BERT) or none (XLM-R), the executor's logits and
    the head's activation give `CrossEncoder.predict` within 1e-5 (OpenVINO: 5e-3)."""
    from embedserve.backends import create_backend
    from embedserve.executor import Executor
    from embedserve.models import load_model_spec
    from embedserve.tokenization import TextTokenizer

    path = build_cross_encoder(tmp_path / "ce", seed=1, architecture=architecture)
    expected = CrossEncoder(str(path), device="cpu", max_length=MAX_SEQ_LENGTH).predict(PAIRS)
    spec = load_model_spec(path)
    assert spec.score_head is not None and spec.score_head.activation == "Sigmoid"
    assert spec.sep_token_id == 102
    assert spec.type_vocab_size == (2 if architecture == "bert" else 1)
    tokenizer = TextTokenizer(spec)
    token_lists = tokenizer.encode_pairs(PAIRS, MAX_SEQ_LENGTH)
    assert len(token_lists[1]) == MAX_SEQ_LENGTH
    loaded = create_backend(backend, spec, device="cpu", cache_dir=tmp_path / "cache")
    executor = Executor(loaded, spec, deterministic=True)
    logits = executor.run(token_lists, width=MAX_SEQ_LENGTH).vectors
    assert logits.shape == (len(PAIRS), 1)
    got = spec.score_head.scores(logits)[:, 0]
    # OpenVINO's CPU kernels drift ~2e-3 from PyTorch on these wide-weight tiny models, for
    # embeddings as much as logits (measured); the real model's vectors agree to 0.99999 cosine.
    tolerance = 5e-3 if backend == "openvino" else 1e-5
    assert np.allclose(got, expected, atol=tolerance), (got, expected)
    assert np.argsort(got).tolist() == np.argsort(expected).tolist()


@pytest.mark.parametrize("architecture", ["bert", "xlm-roberta"])
async def test_rerank_and_score_routes_use_the_cross_encoder(
    tmp_path: Path, architecture: str
) -> None:
    """A cross-encoder behind the routes (default backend, in-process app): rerank order and
    scores, raw logits on TEI's route, vLLM's score, its task in /v1/models, embeddings
    refused."""
    from embedserve.engine import Engine
    from tests.conftest import serve_in_process

    path = build_cross_encoder(tmp_path / "ce", seed=2, architecture=architecture)
    model = CrossEncoder(str(path), device="cpu", max_length=MAX_SEQ_LENGTH)
    query, docs = PAIRS[0][0], [document for _, document in PAIRS]
    expected = model.predict([(query, d) for d in docs])
    engine = Engine.from_models(path, cache_dir=tmp_path / "cache")
    async with serve_in_process(engine) as client:
        answer = (await client.post("/v1/rerank", json={"query": query, "documents": docs})).json()
        order = [item["index"] for item in answer["results"]]
        assert order == list(np.argsort(-expected, kind="stable"))
        got = [item["relevance_score"] for item in answer["results"]]
        assert np.allclose(got, expected[order], atol=1e-5)
        raw = await client.post("/rerank", json={"query": query, "texts": docs, "raw_scores": True})
        logits = {item["index"]: item["score"] for item in raw.json()}
        assert np.allclose(1 / (1 + np.exp(-np.array([logits[j] for j in range(3)]))), expected)
        pairwise = {"text_1": [p[0] for p in PAIRS], "text_2": [p[1] for p in PAIRS]}
        scores = (await client.post("/score", json=pairwise)).json()["data"]
        assert np.allclose([s["score"] for s in scores], model.predict(PAIRS), atol=1e-5)
        budget = {"query": query, "documents": [docs[0] + " and far beyond"]}
        cut = await client.post("/v2/rerank", json=budget | {"max_tokens_per_doc": 5})
        assert cut.json()["results"][0]["relevance_score"] == pytest.approx(
            float(expected[0]), abs=1e-5
        )  # docs[0] is 5 tokens: what is past them is not scored
        whole = {"query": query, "texts": [docs[1]], "truncate": False}
        refused = await client.post("/rerank", json=whole)
        assert refused.status_code == 422 and "truncate" in refused.json()["error"]
        card = (await client.get("/v1/models")).json()["data"][0]
        assert card["task"] == "rerank"
        refused = await client.post("/v1/embeddings", json={"input": "x"})
        assert refused.status_code == 400 and "reranker" in refused.json()["error"]["message"]


async def test_hostile_pairs_are_refused_before_costing_much(tmp_path: Path) -> None:
    """A huge document is cut to the character bound before tokenizing; a huge query is refused
    before tokenizing; pairs over the request token limit are a 400."""
    from embedserve.engine import Engine
    from embedserve.errors import ContextLengthExceeded, TooManyTokens
    from embedserve.ranking import pair_scores

    path = build_cross_encoder(tmp_path / "ce")
    engine = Engine.from_models(path, cache_dir=tmp_path / "cache", max_request_tokens=300)
    async with engine:
        huge = "word " * 400_000  # 2 MB
        cut = await pair_scores(engine, None, ["q"], [huge], [(0, 0)])
        assert cut.tokens == MAX_SEQ_LENGTH
        with pytest.raises(ContextLengthExceeded, match="characters"):
            await pair_scores(engine, None, [huge], ["d"], [(0, 0)])
        with pytest.raises(TooManyTokens):
            await pair_scores(engine, None, ["q"], [huge, huge, huge], [(0, 0), (0, 1), (0, 2)])


async def test_task_setting_and_side_by_side_serving(tmp_path: Path) -> None:
    """One process serves a reranker, the same directory as an embedding model (`task: embed`:
    its encoder, mean-pooled), and a 3-label classifier that rerank refuses with a 400."""
    from embedserve.engine import Engine
    from embedserve.settings import ModelSettings
    from tests.conftest import serve_in_process

    path = build_cross_encoder(tmp_path / "ce")
    classifier = build_cross_encoder(tmp_path / "nli", num_labels=3)
    engine = Engine.from_models(
        [
            ModelSettings(path=path, served_names=("reranker",)),
            ModelSettings(path=path, task="embed", served_names=("encoder",)),
            ModelSettings(path=classifier, served_names=("nli",)),
        ],
        cache_dir=tmp_path / "cache",
    )
    async with serve_in_process(engine) as client:
        cards = (await client.get("/v1/models")).json()["data"]
        assert {c["id"]: c["task"] for c in cards} == {
            "reranker": "rerank",
            "encoder": "embed",
            "nli": "rerank",
        }
        body = {"query": "whales", "documents": ["ocean", "bread"]}
        ranked = await client.post("/v1/rerank", json={**body, "model": "reranker"})
        assert ranked.status_code == 200 and len(ranked.json()["results"]) == 2
        embedded = await client.post("/v1/embeddings", json={"model": "encoder", "input": "x"})
        assert embedded.status_code == 200
        assert len(embedded.json()["data"][0]["embedding"]) == 32
        by_cosine = await client.post("/v1/rerank", json={**body, "model": "encoder"})
        assert by_cosine.status_code == 200
        assert by_cosine.json()["results"] != ranked.json()["results"]
        refused = await client.post("/v1/rerank", json={**body, "model": "nli"})
        assert refused.status_code == 400
        assert "3 labels" in refused.json()["error"]["message"]


async def test_pairs_past_the_deadline_are_a_timeout_and_counted(tmp_path: Path) -> None:
    """Tokenizing and scoring run under the request's deadline: past it, RequestTimeout (a
    504 timeout, not a 500), counted in the model's stats."""
    from embedserve.engine import Engine
    from embedserve.errors import RequestTimeout
    from embedserve.ranking import pair_scores

    path = build_cross_encoder(tmp_path / "ce")
    engine = Engine.from_models(path, cache_dir=tmp_path / "cache", request_timeout_s=0.3)
    async with engine:
        documents = [f"document {i} " + "word " * 100 for i in range(1500)]
        with pytest.raises(RequestTimeout, match="deadline"):
            await pair_scores(engine, None, ["q"], documents, [(0, j) for j in range(1500)])
        assert engine.resolve(None).request_stats.timeouts == 1
