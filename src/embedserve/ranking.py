"""Relevance scores of (query, document) pairs, over-long documents cut, the query never: a
cross-encoder scores each pair (its logits through its activation); an embedding model gives
the cosine of the query's vector (its `query` prompt) and the document's (its `document`
prompt), as vLLM does for embedding models."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from embedserve.engine import Engine
from embedserve.errors import InvalidRequest, NotReady
from embedserve.input_checks import char_checked, check_inputs, check_lengths
from embedserve.params import EmbedParams
from embedserve.result_cache import embed_cached


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


async def pair_scores(
    engine: Engine,
    model: str | None,
    left: Sequence[str],
    right: Sequence[str],
    pairs: Sequence[tuple[int, int]],
    *,
    deadline: float | None = None,
    cut_documents: str = "END",
    raw: bool = False,
) -> PairScores:
    """The score of each (left[i], right[j]) pair: the model's own for a cross-encoder (its
    logits with `raw`), else the cosine (`cosine_scores`)."""
    runner = engine.resolve(model)
    head, scheduler = runner.spec.score_head, runner.scheduler
    if head is None:
        return await cosine_scores(
            engine, model, left, right, pairs, deadline=deadline, cut_documents=cut_documents
        )
    if scheduler is None:
        raise NotReady(f"the model {runner.id!r} is not ready yet; retry shortly")
    if head.num_labels != 1:
        raise InvalidRequest(
            f"the model {runner.id!r} is a classifier with {head.num_labels} labels; rerank and "
            "score need a cross-encoder with one relevance label",
            param="model",
        )
    limits, keep_end = runner.limits, cut_documents == "START"
    check_inputs(right, None, limits.max_client_batch_size)
    loop = asyncio.get_running_loop()
    deadline = engine.deadline() if deadline is None else deadline
    scheduler.check_admission(deadline - loop.time())  # a sure 429 costs no tokenization
    # As for embeddings: a query over the character bound is refused, documents are cut to it
    # (they are cut anyway), before anything is tokenized.
    left = char_checked(left, runner.max_input_chars, None)
    right = char_checked(right, runner.max_input_chars, runner.spec.max_length, keep_end)
    by_query: dict[int, list[int]] = {}
    for i, j in pairs:
        by_query.setdefault(i, []).append(j)
    encoded: dict[tuple[int, int], list[int]] = {}
    for i, documents in by_query.items():  # one tokenization per query
        texts = [right[j] for j in documents]
        found = await engine.tokenizers.encode_pairs(runner, left[i], texts, keep_end=keep_end)
        encoded.update(zip(((i, j) for j in documents), found, strict=True))
    token_lists = [encoded[pair] for pair in pairs]
    total = check_lengths(token_lists, runner.spec.max_length, limits.max_request_tokens)
    async with asyncio.timeout_at(deadline):
        logits = await embed_cached(
            scheduler, runner.result_cache, token_lists, _raw, remaining_s=deadline - loop.time()
        )
    scores = head.scores(logits, raw=raw)[:, 0]
    return PairScores([float(v) for v in scores], total)


def _raw(logits: np.ndarray) -> np.ndarray:
    return logits
