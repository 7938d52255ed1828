"""The inputs a runtime feeds its graph, from the padded token ids and mask alone: token type
ids are zeros, or for a cross-encoder with token types its pair's (derived from the ids)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from embedserve.arrays import IntArray
from embedserve.models.cross_encoder import pair_token_types
from embedserve.models.spec import ModelSpec


def model_feeds(
    names: Iterable[str], input_ids: IntArray, attention_mask: IntArray, pair_sep: int | None
) -> dict[str, IntArray]:
    """`input_ids`, `attention_mask` and `token_type_ids`, as far as `names` asks for them."""
    available = {"input_ids": input_ids, "attention_mask": attention_mask}
    wanted = list(names)
    if "token_type_ids" in wanted:
        available["token_type_ids"] = (
            np.zeros_like(input_ids) if pair_sep is None else pair_token_types(input_ids, pair_sep)
        )
    return {name: available[name] for name in wanted}


def pair_separator(spec: ModelSpec) -> int | None:
    """The separator whose first occurrence ends a pair's first segment, for a cross-encoder
    trained with token types (BERT-like: 2 or more types); else None (all types zero)."""
    if spec.score_head is None or spec.type_vocab_size < 2:
        return None
    return spec.sep_token_id
