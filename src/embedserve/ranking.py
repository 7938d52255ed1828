"""Relevance scores of (query, document) pairs, over-long documents cut, the query never: a
cross-encoder scores each pair (its logits through its activation); an embedding model gives
the cosine of the query's vector (its `query` prompt) and the document's (its `document`
prompt), as vLLM does for embedding models."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from embedserve.deadlines import answered_by
from embedserve.engine import Engine
from embedserve.errors import InvalidRequest, NotReady
from embedserve.input_checks import char_checked, check_inputs, check_lengths
from embedserve.params import EmbedParams
from embedserve.result_cache import embed_cached
from embedserve.runner import ModelRunner


@dataclass(frozen=True)
class PairOptions:
    """How pairs are scored: the request's deadline (None: the engine's), where over-long
    documents are cut (END keeps their start, START their end; NONE refuses them), a token
    budget per document, and a cross-encoder's raw logits instead of its activation."""

    deadline: float | None = None
    cut_documents: str = "END"
    max_document_tokens: int | None = None
    raw: bool = False


@dataclass(frozen=True)
class PairScores:
    """One score per (left, right) pair asked for, and the tokens embedded for them."""

    scores: list[float]
    tokens: int


async def pair_scores(
    engine: Engine,
    model: str | None,
    left: Sequence[str],
    right: Sequence[str],
    pairs: Sequence[tuple[int, int]],
    *,
    options: PairOptions | None = None,
) -> PairScores:
    """The score of each (left[i], right[j]) pair: the model's own for a cross-encoder (its
    logits with `options.raw`), else the cosine of the query's and the document's vectors.
    Over-long documents are cut as `options` says; a query never is."""
    options = options or PairOptions()
    runner = engine.resolve(model)
    if runner.spec.score_head is None:
        return await _cosine_scores(engine, model, (left, right), pairs, options=options)
    if runner.scheduler is None:
        raise NotReady(f"the model {runner.id!r} is not ready yet; retry shortly")
    return await _cross_encoder_scores(engine, runner, (left, right), pairs, options=options)


async def _cosine_scores(
    engine: Engine,
    model: str | None,
    texts: tuple[Sequence[str], Sequence[str]],
    pairs: Sequence[tuple[int, int]],
    *,
    options: PairOptions,
) -> PairScores:
    """Left texts embedded as queries, right ones as documents (each with the model's prompt
    for its role), both normalised: their dot products."""
    left, right = texts
    queries = EmbedParams(texts=left, model=model, input_type="query", normalize=True)
    budget = options.max_document_tokens
    documents = EmbedParams(
        texts=right,
        model=model,
        input_type="document",
        normalize=True,
        truncate=options.cut_documents,
        # the budget counts a document's own tokens, as for a cross-encoder: specials on top
        truncate_prompt_tokens=None
        if budget is None
        else budget + engine.resolve(model).tokenizer.num_special_tokens,
    )
    asked, found = await asyncio.gather(
        engine.embed_params(queries, deadline=options.deadline),
        engine.embed_params(documents, deadline=options.deadline),
    )
    q, d = np.asarray(asked.vectors), np.asarray(found.vectors)
    scores = [float(np.dot(q[i], d[j])) for i, j in pairs]
    return PairScores(scores, asked.prompt_tokens + found.prompt_tokens)


async def _cross_encoder_scores(
    engine: Engine,
    runner: ModelRunner,
    texts: tuple[Sequence[str], Sequence[str]],
    pairs: Sequence[tuple[int, int]],
    *,
    options: PairOptions,
) -> PairScores:
    """Pairs tokenized in one batch (each distinct query once), through the model's queue and
    result cache, under the same bounds and deadline as embeddings."""
    left, right = texts
    head, scheduler, limits = runner.spec.score_head, runner.scheduler, runner.limits
    assert head is not None and scheduler is not None
    if head.num_labels != 1:
        raise InvalidRequest(
            f"the model {runner.id!r} is a classifier with {head.num_labels} labels; rerank and "
            "score need a cross-encoder with one relevance label",
            param="model",
        )
    keep_end, cut = options.cut_documents == "START", options.cut_documents != "NONE"
    check_inputs(right, None, limits.max_client_batch_size)
    loop = asyncio.get_running_loop()
    deadline = engine.deadline() if options.deadline is None else options.deadline
    scheduler.check_admission(deadline - loop.time())  # a sure 429 costs no tokenization
    # As for embeddings: a query over the character bound is refused, documents are cut to it
    # (they are cut anyway), before anything is tokenized.
    left = char_checked(left, runner.max_input_chars, None)
    cut_to = runner.spec.max_length if cut else None
    right = char_checked(right, runner.max_input_chars, cut_to, keep_end)
    async with answered_by(deadline, runner, engine.request_timeout_s):
        token_lists = await engine.tokenizers.encode_pairs(
            runner, [(left[i], right[j]) for i, j in pairs], keep_end=keep_end, cut=cut,
            max_document_tokens=options.max_document_tokens,
        )  # fmt: skip
        total = check_lengths(token_lists, runner.spec.max_length, limits.max_request_tokens)
        logits = await embed_cached(
            scheduler, runner.result_cache, token_lists, _raw, remaining_s=deadline - loop.time()
        )
    scores = head.scores(logits, raw=options.raw)[:, 0]
    return PairScores([float(v) for v in scores], total)


def _raw(logits: np.ndarray) -> np.ndarray:
    return logits
