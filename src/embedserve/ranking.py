"""Relevance scores from an embedding model: the cosine similarity of a query's vector (its
`query` prompt) and each document's (its `document` prompt, over-long documents cut at the end,
the query never). What `/rerank` and `/score` answer for an embedding model, as vLLM does; a
cross-encoder will score pairs here too."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from embedserve.engine import Engine
from embedserve.params import EmbedParams


@dataclass(frozen=True)
class PairScores:
    """One score per (left, right) pair asked for, and the tokens embedded for them."""

    scores: list[float]
    tokens: int


async def cosine_scores(
    engine: Engine,
    model: str | None,
    left: Sequence[str],
    right: Sequence[str],
    pairs: Sequence[tuple[int, int]],
    *,
    deadline: float | None = None,
    cut_documents: str = "END",
) -> PairScores:
    """The cosine of `left[i]` (as queries) and `right[j]` (as documents) for each (i, j);
    over-long documents are cut at `cut_documents` (END keeps their start)."""
    queries = EmbedParams(texts=left, model=model, input_type="query", normalize=True)
    documents = EmbedParams(
        texts=right, model=model, input_type="document", normalize=True, truncate=cut_documents
    )
    asked, found = await asyncio.gather(
        engine.embed_params(queries, deadline=deadline),
        engine.embed_params(documents, deadline=deadline),
    )
    q, d = np.asarray(asked.vectors), np.asarray(found.vectors)
    scores = [float(np.dot(q[i], d[j])) for i, j in pairs]
    return PairScores(scores, asked.prompt_tokens + found.prompt_tokens)
