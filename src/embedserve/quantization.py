"""The ranges an int8/uint8 request is quantised over: the model's `Calibration`, whose sample
is embedded through the model's own tokenizers and scheduler, like a client's texts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from embedserve.arrays import FloatArray
from embedserve.params import EmbedParams
from embedserve.postprocess import PostProcess
from embedserve.prompts import resolve_prompt
from embedserve.request_tokens import request_tokens
from embedserve.runner import ModelRunner
from embedserve.tokenizer_pool import TokenizerPool
from embedserve.truncation import resolve_truncation

SAMPLE_REQUEST_TEXTS = 32  # the sample goes in requests of this many texts (others interleave)


async def request_ranges(
    tokenizers: TokenizerPool,
    runner: ModelRunner,
    finish: PostProcess,
    width: int,
    timeout_s: float,
) -> FloatArray:
    """(2, width) ranges for a request whose vectors `finish` post-processes."""

    async def embed(texts: Sequence[str]) -> FloatArray:
        return await embed_sample(tokenizers, runner, texts, timeout_s)

    return await runner.calibration.ranges(finish, width, embed)


async def embed_sample(
    tokenizers: TokenizerPool, runner: ModelRunner, texts: Sequence[str], timeout_s: float
) -> FloatArray:
    """Raw (pooled, not post-processed) vectors of `texts` with the model's default prompt,
    over-long ones cut at the end, in small requests queued like anyone's."""
    spec, scheduler = runner.spec, runner.scheduler
    assert scheduler is not None
    cut = resolve_truncation("END", None, spec.max_length, runner.truncate, runner.chunk_overlap)
    prompt = resolve_prompt(spec, None, None)
    size = max(1, min(SAMPLE_REQUEST_TEXTS, runner.limits.max_client_batch_size))
    parts = []
    for start in range(0, len(texts), size):
        params = EmbedParams(texts=texts[start : start + size], truncate="END")
        tokens = await request_tokens(tokenizers, runner, params, cut, prompt)
        parts.append(await scheduler.embed(tokens.token_lists, _raw, remaining_s=timeout_s))
    return np.concatenate(parts)


def _raw(vectors: FloatArray) -> FloatArray:
    return vectors
