"""Cross-encoder metadata: detection, the activation sentence-transformers would apply, and the
token type ids of pairs derived from the ids alone, checked against the tokenizer's own."""

from __future__ import annotations

import numpy as np
import pytest
from tokenizers import Tokenizer

from embedserve.errors import ModelLoadError
from embedserve.executor import pad_batch
from embedserve.models import bundled_model_path
from embedserve.models.cross_encoder import (
    ScoreHead,
    is_cross_encoder,
    pair_token_types,
    score_head,
    serves_pairs,
)


def test_detection() -> None:
    assert is_cross_encoder({"architectures": ["BertForSequenceClassification"]})
    assert is_cross_encoder({"architectures": ["XLMRobertaForSequenceClassification"]})
    assert not is_cross_encoder({"architectures": ["BertModel"]})
    assert not is_cross_encoder({})


def test_task_overrides_the_architecture() -> None:
    classifier = {"architectures": ["BertForSequenceClassification"]}
    assert serves_pairs(classifier, "auto") and serves_pairs(classifier, "rerank")
    assert not serves_pairs(classifier, "embed")  # its encoder, pooled
    assert serves_pairs({"model_type": "bert"}, "rerank")  # no architecture declared
    assert not serves_pairs({"model_type": "bert"}, "auto")
    with pytest.raises(ModelLoadError, match=r"classification head.*BertModel"):
        serves_pairs({"architectures": ["BertModel"]}, "rerank")


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"num_labels": 1}, ScoreHead(1, "Sigmoid")),
        ({"id2label": {"0": "a", "1": "b", "2": "c"}}, ScoreHead(3, "Identity")),
        (
            {"sentence_transformers": {"activation_fn": "torch.nn.modules.linear.Identity"}},
            ScoreHead(1, "Identity"),
        ),
        (
            {"sbert_ce_default_activation_function": "torch.nn.modules.activation.Tanh"},
            ScoreHead(1, "Tanh"),
        ),
    ],
)
def test_score_head(config: dict[str, object], expected: ScoreHead) -> None:
    assert score_head(config) == expected


def test_unknown_activation_is_refused() -> None:
    with pytest.raises(ModelLoadError, match="not supported"):
        score_head({"sentence_transformers": {"activation_fn": "my.module.Swish"}})


def test_activations() -> None:
    logits = np.array([[0.0, 2.0], [-1.0, 1.0]], dtype=np.float32)
    assert np.allclose(ScoreHead(2, "Softmax").scores(logits).sum(axis=1), 1.0)
    assert np.allclose(ScoreHead(1, "Sigmoid").scores(logits[:, :1]), [[0.5], [1 / (1 + np.e)]])
    assert ScoreHead(1, "Sigmoid").scores(logits, raw=True) is logits


def test_pair_token_types_equal_the_tokenizers() -> None:
    tokenizer = Tokenizer.from_file(str(bundled_model_path() / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    pairs = [("a query", "a longer document text"), ("q", "d"), ("what is it", "it is x")]
    encodings = tokenizer.encode_batch(pairs)
    ids, _ = pad_batch([e.ids for e in encodings], pad_id=0)
    derived = pair_token_types(ids, sep_id=tokenizer.token_to_id("[SEP]"))
    for row, encoding in enumerate(encodings):
        assert derived[row, : len(encoding.ids)].tolist() == encoding.type_ids


def test_pairs_cut_only_the_document(bundled_spec: object) -> None:
    """`encode_pairs` equals the HF tokenizer's `only_second` truncation, from either end."""
    from transformers import AutoTokenizer

    from embedserve.errors import ContextLengthExceeded
    from embedserve.tokenization import TextTokenizer

    ours = TextTokenizer(bundled_spec)  # type: ignore[arg-type]
    theirs = AutoTokenizer.from_pretrained(str(bundled_model_path()))
    query, docs = "where do whales live", ["whales live in every ocean", "bread " * 100]
    for side in ("right", "left"):
        theirs.truncation_side = side
        expected = theirs([query] * 2, docs, truncation="only_second", max_length=40)
        got = ours.encode_pairs([(query, doc) for doc in docs], 40, keep_end=side == "left")
        assert got == expected["input_ids"]
    with pytest.raises(ContextLengthExceeded, match="no room"):
        ours.encode_pairs([("word " * 40, doc) for doc in docs], 40)


def test_pairs_of_different_queries_in_one_batch(bundled_spec: object) -> None:
    """N:N pairs (a query each, some repeated) in one call equal the HF tokenizer's pairs."""
    from transformers import AutoTokenizer

    from embedserve.tokenization import TextTokenizer

    ours = TextTokenizer(bundled_spec)  # type: ignore[arg-type]
    theirs = AutoTokenizer.from_pretrained(str(bundled_model_path()))
    queries = ["where do whales live", "bread", "where do whales live", "trains " * 30]
    docs = ["whales live in every ocean", "a recipe " * 30, "deep water", "bridges"]
    expected = theirs(queries, docs, truncation="only_second", max_length=48)
    assert ours.encode_pairs(list(zip(queries, docs, strict=True)), 48) == expected["input_ids"]


def test_pairs_refused_without_cut_and_cut_to_a_document_budget(bundled_spec: object) -> None:
    """`cut=False` refuses only a pair over the model's length; `max_document_tokens` cuts each
    document to that many tokens (Cohere's `max_tokens_per_doc`)."""
    from embedserve.errors import ContextLengthExceeded
    from embedserve.tokenization import TextTokenizer

    ours = TextTokenizer(bundled_spec)  # type: ignore[arg-type]
    query, short, long = "whales", "whales live in every ocean", "bread " * 100
    pairs = [(query, short), (query, long)]
    assert ours.encode_pairs(pairs[:1], 40, cut=False) == ours.encode_pairs(pairs[:1], 40)
    with pytest.raises(ContextLengthExceeded, match="100 tokens"):
        ours.encode_pairs(pairs, 40, cut=False)
    budget = ours.encode_pairs(pairs, 40, max_document_tokens=3)
    cut = [(query, "whales live in"), (query, "bread bread bread")]
    assert budget == ours.encode_pairs(cut, 40)
