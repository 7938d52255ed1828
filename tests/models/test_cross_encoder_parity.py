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


def test_torch_backend_and_executor_score_like_cross_encoder(tmp_path: Path) -> None:
    """The spec reads the head; the torch backend gives logits with derived token types; the
    executor passes them through; the head's activation gives `CrossEncoder.predict`."""
    from embedserve.backends import create_backend
    from embedserve.executor import Executor
    from embedserve.models import load_model_spec

    path = build_cross_encoder(tmp_path / "ce", seed=1)
    expected = CrossEncoder(str(path), device="cpu", max_length=MAX_SEQ_LENGTH).predict(PAIRS)
    spec = load_model_spec(path)
    assert spec.score_head is not None and spec.score_head.activation == "Sigmoid"
    assert spec.sep_token_id == 102
    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    tokenizer.enable_truncation(MAX_SEQ_LENGTH, strategy="only_second")
    tokenizer.no_padding()  # the bundled tokenizer.json pads; the executor pads itself
    token_lists = [e.ids for e in tokenizer.encode_batch(PAIRS)]
    backend = create_backend("torch", spec, device="cpu", cache_dir=tmp_path / "cache")
    executor = Executor(backend, spec, deterministic=True)
    logits = executor.run(token_lists, width=MAX_SEQ_LENGTH).vectors
    assert np.allclose(spec.score_head.scores(logits)[:, 0], expected, atol=1e-5)


async def test_rerank_and_score_routes_use_the_cross_encoder(tmp_path: Path) -> None:
    """A cross-encoder behind the routes (torch, in-process app): rerank order and scores,
    raw logits on TEI's route, vLLM's score, its task in /v1/models, embeddings refused."""
    from embedserve.engine import Engine
    from tests.conftest import serve_in_process

    path = build_cross_encoder(tmp_path / "ce", seed=2)
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
        card = (await client.get("/v1/models")).json()["data"][0]
        assert card["task"] == "rerank"
        refused = await client.post("/v1/embeddings", json={"input": "x"})
        assert refused.status_code == 400 and "reranker" in refused.json()["error"]["message"]


def test_other_backends_are_refused_for_now(tmp_path: Path) -> None:
    from embedserve.errors import ModelLoadError
    from embedserve.runner import ModelRunner
    from embedserve.settings import ModelSettings

    path = build_cross_encoder(tmp_path / "ce")
    with pytest.raises(ModelLoadError, match="--backend torch"):
        ModelRunner.from_settings(ModelSettings(path=path, backend="onnx"), tmp_path)


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
