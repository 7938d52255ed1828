"""Cross-encoder (reranker) models: whether a model directory is one, its score head (labels and
the activation sentence-transformers applies), and the token type ids of query-document pairs.
Every backend serves them (the ONNX export includes the classification head)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from embedserve.arrays import FloatArray, IntArray
from embedserve.errors import ModelLoadError

ACTIVATIONS = ("Sigmoid", "Identity", "Tanh", "Softmax")
_LEGACY_KEY = "sbert_ce_default_activation_function"  # sentence-transformers < 4.0


@dataclass(frozen=True)
class ScoreHead:
    """What turns a cross-encoder's logits into scores."""

    num_labels: int
    activation: str  # one of ACTIVATIONS

    def scores(self, logits: FloatArray, *, raw: bool = False) -> FloatArray:
        """(n, num_labels) logits -> scores: the activation, unless `raw`."""
        if raw or self.activation == "Identity":
            return logits
        if self.activation == "Sigmoid":
            return np.asarray(1 / (1 + np.exp(-logits)), dtype=np.float32)
        if self.activation == "Tanh":
            return np.tanh(logits).astype(np.float32)
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return np.asarray(shifted / shifted.sum(axis=1, keepdims=True), dtype=np.float32)


def is_cross_encoder(config: Mapping[str, Any]) -> bool:
    """A `*ForSequenceClassification` architecture in `config.json`."""
    architectures = config.get("architectures") or []
    return any(str(name).endswith("ForSequenceClassification") for name in architectures)


def serves_pairs(config: Mapping[str, Any], task: str) -> bool:
    """Whether the model is served as a cross-encoder: `task` rerank or embed says so, auto
    follows the architecture. Rerank on a model whose declared architecture has no
    classification head is refused (its scores would come from random weights)."""
    if task == "embed":
        return False
    if task == "rerank" and config.get("architectures") and not is_cross_encoder(config):
        raise ModelLoadError(
            f"task rerank needs a classification head, and config.json declares "
            f"{', '.join(map(str, config['architectures']))}; serve it with task embed, or give "
            "a cross-encoder (a *ForSequenceClassification model)"
        )
    return task == "rerank" or is_cross_encoder(config)


def score_head(config: Mapping[str, Any]) -> ScoreHead:
    """The labels and activation of a cross-encoder's `config.json`, read as
    sentence-transformers 6 does: `sentence_transformers.activation_fn`, else the pre-4.0 key,
    else Sigmoid for one label and Identity for several."""
    labels = config.get("num_labels") or len(config.get("id2label") or {}) or 1
    declared = (config.get("sentence_transformers") or {}).get("activation_fn")
    declared = declared or config.get(_LEGACY_KEY)
    if declared is None:
        return ScoreHead(int(labels), "Sigmoid" if labels == 1 else "Identity")
    name = str(declared).rsplit(".", 1)[-1]
    if name not in ACTIVATIONS:
        raise ModelLoadError(
            f"the cross-encoder's activation {declared!r} is not supported "
            f"(supported: {', '.join(ACTIVATIONS)})"
        )
    return ScoreHead(int(labels), name)


def pair_token_types(input_ids: IntArray, sep_id: int) -> IntArray:
    """Token type ids of padded `[CLS] query [SEP] document [SEP]` rows, from the ids alone: 0 up
    to and including the first separator, 1 after it, as BERT's tokenizer gives a pair (padding
    gets 1 too; the attention mask hides it). So the scheduler carries token ids only."""
    seen_sep = np.cumsum(input_ids == sep_id, axis=1)
    after_first = (seen_sep >= 1) & ~((seen_sep == 1) & (input_ids == sep_id))
    types: IntArray = after_first.astype(np.int64)
    return types
